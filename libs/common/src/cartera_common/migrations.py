"""One Alembic environment per service schema, driven from here so the env.py files stay three lines."""

from __future__ import annotations

import asyncio
import os
from importlib.resources import files
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from cartera_common.db import service_metadata
from cartera_common.plumbing_tables import Plumbing
from cartera_common.settings import asyncpg_url


def upgrade(database_url: str, package: str, revision: str = "head") -> None:
    """Migrates one service's schema; blocking, so call it from a thread inside an event loop."""
    cfg = Config()
    cfg.set_main_option("script_location", str(files(package) / "migrations"))
    cfg.attributes["database_url"] = database_url
    command.upgrade(cfg, revision)


def run_env(metadata: MetaData) -> None:
    """Body of every service's `migrations/env.py`: online migrations of that schema only."""
    schema = metadata.schema
    assert schema, "service metadata must name its schema"
    url = context.config.attributes.get("database_url") or os.environ["DATABASE_URL"]

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table_schema = (
            getattr(obj, "schema", None) if type_ == "table" else getattr(getattr(obj, "table", None), "schema", schema)
        )
        return table_schema == schema

    def migrate(connection: Connection) -> None:
        # Serialises concurrent migrators (several replicas starting at once) per schema.
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"migrate:{schema}"})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.execute(text(f'SET search_path TO "{schema}", public'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_object=include_object,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(asyncpg_url(url))
        try:
            async with engine.begin() as conn:
                await conn.run_sync(migrate)
        finally:
            await engine.dispose()

    asyncio.run(run())


def create_plumbing_tables(connection: Connection, schema: str) -> None:
    """Called from each service's first migration: inbox, outbox, key copy, broker epoch."""
    metadata = service_metadata(schema)
    Plumbing(metadata)
    metadata.create_all(connection)
