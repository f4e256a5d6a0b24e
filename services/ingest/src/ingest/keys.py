"""Workspaces and API keys: created, revoked, and announced on `access` in the same transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.access import Role, hash_key, key_envelope, key_prefix, new_key
from cartera_common.outbox import OutMessage, emit
from cartera_common.topics import ACCESS

WORKSPACE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    prefix: str
    role: str
    workspace_id: str
    created_at: datetime
    revoked_at: datetime | None


async def workspace_exists(conn: AsyncConnection, *, workspace_id: str) -> bool:
    return bool(await conn.scalar(text("SELECT 1 FROM workspace WHERE workspace_id = :w"), {"w": workspace_id}))


async def create_workspace(conn: AsyncConnection, *, workspace_id: str, name: str) -> bool:
    result = await conn.execute(
        text("INSERT INTO workspace (workspace_id, name) VALUES (:w, :n) ON CONFLICT DO NOTHING"),
        {"w": workspace_id, "n": name},
    )
    return bool(getattr(result, "rowcount", 0))


async def add_key(
    conn: AsyncConnection, *, workspace_id: str, role: Role, now: datetime, key: str | None = None
) -> str:
    """Stores the key's hash and announces it; returns the key, which is never stored in clear."""
    key = key or new_key(role)
    digest = hash_key(key)
    await conn.execute(
        text(
            "INSERT INTO access_key (key_hash, workspace_id, role, prefix, created_at) "
            "VALUES (:h, :w, :r, :p, :at) ON CONFLICT (key_hash) DO NOTHING"
        ),
        {"h": digest, "w": workspace_id, "r": role, "p": key_prefix(key), "at": now},
    )
    await _announce(
        conn, workspace_id=workspace_id, key_hash=digest, role=role, prefix=key_prefix(key), revoked=False, at=now
    )
    return key


async def revoke_key(conn: AsyncConnection, *, workspace_id: str, prefix: str, now: datetime) -> int:
    rows = (
        await conn.execute(
            text(
                "UPDATE access_key SET revoked_at = :at WHERE workspace_id = :w AND prefix = :p "
                "AND revoked_at IS NULL RETURNING key_hash, role, prefix"
            ),
            {"at": now, "w": workspace_id, "p": prefix},
        )
    ).all()
    for row in rows:
        await _announce(
            conn,
            workspace_id=workspace_id,
            key_hash=row.key_hash,
            role=row.role,
            prefix=row.prefix,
            revoked=True,
            at=now,
        )
    return len(rows)


async def list_keys(conn: AsyncConnection, *, workspace_id: str) -> list[KeyInfo]:
    rows = await conn.execute(
        text(
            "SELECT prefix, role, workspace_id, created_at, revoked_at FROM access_key "
            "WHERE workspace_id = :w ORDER BY created_at"
        ),
        {"w": workspace_id},
    )
    return [KeyInfo(*row) for row in rows]


async def reannounce_all(conn: AsyncConnection) -> None:
    """After the broker came back empty, every service's key copy must still be rebuildable."""
    await conn.execute(text("DELETE FROM outbox WHERE topic = :t"), {"t": ACCESS})
    rows = (
        await conn.execute(text("SELECT key_hash, workspace_id, role, prefix, created_at, revoked_at FROM access_key"))
    ).all()
    for r in rows:
        moments = [(False, r.created_at)] + ([(True, r.revoked_at)] if r.revoked_at is not None else [])
        for revoked, at in moments:
            await _announce(
                conn,
                workspace_id=r.workspace_id,
                key_hash=r.key_hash,
                role=r.role,
                prefix=r.prefix,
                revoked=revoked,
                at=at,
            )


async def _announce(
    conn: AsyncConnection, *, workspace_id: str, key_hash: str, role: str, prefix: str, revoked: bool, at: datetime
) -> None:
    env = key_envelope(workspace_id=workspace_id, key_hash=key_hash, role=role, prefix=prefix, revoked=revoked, at=at)  # type: ignore[arg-type]
    await emit(conn, [OutMessage.of(ACCESS, env)])
