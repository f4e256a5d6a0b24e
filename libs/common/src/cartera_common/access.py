"""API keys: hashed, one workspace and one role each, checked locally by every service.

Ingest owns the keys and announces them on the `access` topic; every other service follows that
topic into its own `access_key` table, so checking a key never calls another service.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from fastapi import HTTPException, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cartera_common.events.envelope import Envelope
from cartera_common.logs import bind

Role = Literal["write", "read", "admin"]
ROLES: tuple[Role, ...] = ("write", "read", "admin")
KEY_GRANTED = "access_key_granted"
KEY_REVOKED = "access_key_revoked"


def new_key(role: Role) -> str:
    return f"ck_{role[0]}_{secrets.token_urlsafe(24)}"


def hash_key(key: str) -> str:
    # Keys are long random tokens, so a fast hash is enough; the raw key is never stored.
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:10]


@dataclass(frozen=True, slots=True)
class Principal:
    workspace_id: str
    role: Role
    key_prefix: str

    def allows(self, role: Role) -> bool:
        return self.role == role or self.role == "admin"


class KeyStore:
    """Looks keys up in the service's own copy, caching answers for a couple of seconds."""

    def __init__(self, engine: AsyncEngine, ttl_s: float = 2.0) -> None:
        self._engine = engine
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def principal(self, key: str) -> Principal | None:
        digest = hash_key(key)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT workspace_id, role, prefix FROM access_key WHERE key_hash = :h AND revoked_at IS NULL"
                    ),
                    {"h": digest},
                )
            ).first()
        found = Principal(row.workspace_id, row.role, row.prefix) if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self._ttl, found)
        return found


def presented_key(request: Request) -> str | None:
    """The key as HTTP Basic user name (Segment's convention) or as a Bearer token."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            user = base64.b64decode(value.strip(), validate=True).decode().split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    return None


_CHALLENGE = {"WWW-Authenticate": 'Basic realm="cartera", Bearer'}


async def authorize(request: Request, key: str | None, role: Role) -> Principal:
    """401 without a valid key, 403 for a key of the wrong role."""
    if key is None:
        raise HTTPException(401, "an API key is required (HTTP Basic user name or Bearer token)", headers=_CHALLENGE)
    store: KeyStore = request.app.state.keys
    principal = await store.principal(key)
    if principal is None:
        raise HTTPException(401, "unknown or revoked API key", headers=_CHALLENGE)
    if not principal.allows(role):
        raise HTTPException(403, f"this {principal.role} key cannot do this; a {role} key is required")
    bind(workspace_id=principal.workspace_id)  # the rest of the request logs its workspace
    return principal


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency taking the key from the Authorization header."""

    async def dependency(request: Request) -> Principal:
        return await authorize(request, presented_key(request), role)

    return dependency


def key_envelope(*, workspace_id: str, key_hash: str, role: Role, prefix: str, revoked: bool, at: datetime) -> Envelope:
    """The `access` topic message announcing a key or its revocation (never the key itself)."""
    kind = KEY_REVOKED if revoked else KEY_GRANTED
    return Envelope(
        event_id=f"{kind}:{key_hash}",
        type=kind,
        workspace_id=workspace_id,
        customer_id=f"key:{prefix}",
        occurred_at=at,
        received_at=datetime.now(UTC),
        source="ingest",
        payload={"key_hash": key_hash, "role": role, "prefix": prefix},
    )


_UPSERT = text(
    """
    INSERT INTO access_key (key_hash, workspace_id, role, prefix, created_at, revoked_at)
    VALUES (:h, :ws, :role, :prefix, :at, :revoked)
    ON CONFLICT (key_hash) DO UPDATE
    SET revoked_at = COALESCE(access_key.revoked_at, EXCLUDED.revoked_at)
    """
)


async def apply_access(conn: AsyncConnection, events: list[Envelope]) -> None:
    """Follows `access` into the local copy; a revocation sticks whatever order it arrives in."""
    for e in events:
        if e.type not in (KEY_GRANTED, KEY_REVOKED):
            raise ValueError(f"unexpected type {e.type!r} on the access topic")
        await conn.execute(
            _UPSERT,
            {
                "h": e.payload["key_hash"],
                "ws": e.workspace_id,
                "role": e.payload["role"],
                "prefix": e.payload["prefix"],
                "at": e.occurred_at,
                "revoked": e.occurred_at if e.type == KEY_REVOKED else None,
            },
        )
