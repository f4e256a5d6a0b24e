"""The migrations create exactly the tables the code queries."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from cartera.services import SERVICES
from cartera.stack import Stack
from cartera_common.settings import asyncpg_url


def declared(schema: str) -> MetaData:
    module = __import__(f"{schema}.tables", fromlist=["metadata"])
    return module.metadata  # type: ignore[no-any-return]


@pytest.mark.filterwarnings("ignore:Did not recognize type .xid8.")
@pytest.mark.parametrize("schema", [s.name for s in SERVICES])
def test_migrated_tables_and_columns_match_the_declared_ones(stack: Stack, schema: str) -> None:
    async def reflect() -> dict[str, set[str]]:
        engine = create_async_engine(asyncpg_url(stack.database_url))
        try:
            async with engine.connect() as conn:
                md = MetaData(schema=schema)
                await conn.run_sync(lambda sync: md.reflect(sync))
                return {t.name: {c.name for c in t.columns} for t in md.tables.values() if t.name != "alembic_version"}
        finally:
            await engine.dispose()

    migrated = asyncio.run(reflect())
    expected = {t.name: {c.name for c in t.columns} for t in declared(schema).tables.values()}
    assert migrated == expected
