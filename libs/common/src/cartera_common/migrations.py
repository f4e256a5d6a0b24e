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


# Version 1 of the plumbing every schema holds, frozen here as DDL: a migration must create the
# same tables forever, whatever `plumbing_tables.Plumbing` (the query-side definition) becomes.
# A change to the plumbing is a new function here, called from a new migration in every service.
_PLUMBING_V1 = (
    """CREATE TABLE "{s}".inbox (
        workspace_id VARCHAR(64) NOT NULL,
        event_id VARCHAR(128) NOT NULL,
        topic VARCHAR(128) NOT NULL,
        outcome VARCHAR(16) DEFAULT 'applied' NOT NULL,
        processed_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_inbox PRIMARY KEY (workspace_id, event_id))""",
    """CREATE TABLE "{s}".outbox (
        id BIGSERIAL NOT NULL,
        workspace_id VARCHAR(64) NOT NULL,
        message_id VARCHAR(128) NOT NULL,
        topic VARCHAR(128) NOT NULL,
        key TEXT NOT NULL,
        value BYTEA NOT NULL,
        headers JSONB,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        txid xid8 DEFAULT pg_current_xact_id() NOT NULL,
        CONSTRAINT pk_outbox PRIMARY KEY (id),
        CONSTRAINT uq_outbox_message UNIQUE (workspace_id, topic, message_id))""",
    'CREATE INDEX ix_outbox_created_at ON "{s}".outbox USING brin (created_at)',
    'CREATE INDEX ix_outbox_txid_id ON "{s}".outbox (txid, id)',
    """CREATE TABLE "{s}".access_key (
        key_hash VARCHAR(64) NOT NULL,
        workspace_id VARCHAR(64) NOT NULL,
        role VARCHAR(16) NOT NULL,
        prefix VARCHAR(16) NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        revoked_at TIMESTAMP WITH TIME ZONE,
        CONSTRAINT pk_access_key PRIMARY KEY (key_hash))""",
    """CREATE TABLE "{s}".relay_state (
        relay VARCHAR(64) NOT NULL,
        epoch VARCHAR(128),
        txid xid8 DEFAULT '0'::xid8 NOT NULL,
        last_id BIGINT DEFAULT 0 NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_relay_state PRIMARY KEY (relay))""",
)


def create_plumbing_tables(connection: Connection, schema: str) -> None:
    """Called from each service's first migration: inbox, outbox, key copy, relay state."""
    for ddl in _PLUMBING_V1:
        connection.execute(text(ddl.format(s=schema)))


# Version 2: the inbox is pruned by age (see OutboxRelay housekeeping), so it needs a cheap index
# on processed_at; rows are appended in time order, which is what BRIN is for.
_PLUMBING_V2 = ('CREATE INDEX ix_inbox_processed_at ON "{s}".inbox USING brin (processed_at)',)


def upgrade_plumbing_v2(connection: Connection, schema: str) -> None:
    """Called from a second plumbing migration in every service."""
    for ddl in _PLUMBING_V2:
        connection.execute(text(ddl.format(s=schema)))
