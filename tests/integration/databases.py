"""A fresh, migrated database for in-process tests, with an engine set up as the service's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from cartera.stack import Servers
from cartera_common.db import create_engine
from cartera_common.settings import DatabaseSettings


@asynccontextmanager
async def migrated_engine(servers: Servers, schema: str) -> AsyncIterator[AsyncEngine]:
    """Every service's schema migrated, no service running; queries see `schema` first."""
    url = await asyncio.to_thread(servers.migrated_database)  # alembic runs its own event loop
    engine = create_engine(DatabaseSettings(database_url=url), schema=schema)
    try:
        yield engine
    finally:
        await engine.dispose()
