"""First start: the `default` workspace with an admin, a write and a read key."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera_common.access import ROLES, Role, hash_key
from cartera_common.clock import Clock
from ingest.keys import add_key, create_workspace
from ingest.settings import IngestSettings

DEFAULT_WORKSPACE = "default"


async def ensure_default_workspace(engine: AsyncEngine, settings: IngestSettings, clock: Clock) -> dict[Role, str]:
    """Returns the keys it generated (to print once); keys given in the environment are added if new."""
    given: dict[Role, str | None] = {
        "admin": settings.cartera_admin_key,
        "write": settings.cartera_write_key,
        "read": settings.cartera_read_key,
    }
    generated: dict[Role, str] = {}
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('ingest:bootstrap'))"))
        created = await create_workspace(conn, workspace_id=DEFAULT_WORKSPACE, name="Default workspace")
        for role in ROLES:
            key = given[role]
            if key:
                known = await conn.scalar(text("SELECT 1 FROM access_key WHERE key_hash = :h"), {"h": hash_key(key)})
                if not known:
                    await add_key(conn, workspace_id=DEFAULT_WORKSPACE, role=role, now=clock.now(), key=key)
            elif created:
                generated[role] = await add_key(conn, workspace_id=DEFAULT_WORKSPACE, role=role, now=clock.now())
    return generated
