"""Engine creation, so every service talks to PostgreSQL the same way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import orjson
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cartera_common.settings import DatabaseSettings, asyncpg_url

# Stable constraint names, so migrations written today still match the tables tomorrow.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def create_engine(settings: DatabaseSettings, *, schema: str) -> AsyncEngine:
    """An engine whose connections see the service's schema first, so queries stay unqualified."""
    return create_async_engine(
        asyncpg_url(settings.database_url),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        # No pre-ping: it costs three round trips per transaction. A connection lost to a database
        # restart fails one transaction, which consumers retry and HTTP answers with a 503.
        pool_pre_ping=False,
        pool_recycle=3600,
        connect_args={"server_settings": {"search_path": f"{schema},public", "application_name": schema}},
        # The standard library's json is several times slower, and jsonb columns are read per row.
        json_deserializer=orjson.loads,
        json_serializer=_dumps,
    )


def _dumps(value: object) -> str:
    return orjson.dumps(value, default=str).decode()


def json_rows(rows: Iterable[Mapping[str, object]]) -> str:
    """Rows for `jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(col type, …)`: one parameter instead of an
    array per column, which asyncpg would check element by element (it showed as a third of a
    consumer's CPU). Decimals travel as strings and datetimes as RFC 3339; PostgreSQL parses both."""
    return orjson.dumps(list(rows), default=_decimal, option=orjson.OPT_UTC_Z).decode()


def _decimal(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
