"""The inbox, outbox and key-copy tables every service keeps in its own schema."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import UserDefinedType


class XID8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (asyncpg reads and writes it as an int)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


class Plumbing:
    """Table objects bound to one service's MetaData."""

    def __init__(self, metadata: MetaData) -> None:
        self.inbox = Table(
            "inbox",
            metadata,
            Column("workspace_id", String(64), nullable=False),
            Column("event_id", String(128), nullable=False),
            Column("topic", String(128), nullable=False),
            Column("outcome", String(16), nullable=False, server_default="applied"),
            Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            PrimaryKeyConstraint("workspace_id", "event_id"),
            Index("ix_inbox_processed_at", "processed_at", postgresql_using="brin"),
        )
        self.outbox = Table(
            "outbox",
            metadata,
            Column("id", BigInteger, primary_key=True, autoincrement=True),
            Column("workspace_id", String(64), nullable=False),
            Column("message_id", String(128), nullable=False),
            Column("topic", String(128), nullable=False),
            Column("key", Text, nullable=False),
            Column("value", LargeBinary, nullable=False),
            Column("headers", JSONB, nullable=True),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            # The writing transaction's id: the relay publishes in (txid, id) order up to the
            # oldest transaction still running, so a row is never updated after it is written.
            Column("txid", XID8, nullable=False, server_default=text("pg_current_xact_id()")),
            UniqueConstraint("workspace_id", "topic", "message_id", name="uq_outbox_message"),
            Index("ix_outbox_txid_id", "txid", "id"),
            Index("ix_outbox_created_at", "created_at", postgresql_using="brin"),
        )
        self.access_key = Table(
            "access_key",
            metadata,
            Column("key_hash", String(64), primary_key=True),
            Column("workspace_id", String(64), nullable=False),
            Column("role", String(16), nullable=False),
            Column("prefix", String(16), nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            Column("revoked_at", DateTime(timezone=True), nullable=True),
        )
        self.relay_state = Table(
            "relay_state",
            metadata,
            Column("relay", String(64), primary_key=True),
            Column("epoch", String(128), nullable=True),
            Column("txid", XID8, nullable=False, server_default=text("'0'::xid8")),
            Column("last_id", BigInteger, nullable=False, server_default="0"),
            Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        )
