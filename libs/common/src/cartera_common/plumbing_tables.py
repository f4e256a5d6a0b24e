"""The inbox, outbox and key-copy tables every service keeps in its own schema."""

from __future__ import annotations

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
            Column("published_at", DateTime(timezone=True), nullable=True),
            UniqueConstraint("workspace_id", "topic", "message_id", name="uq_outbox_message"),
            Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
            # BRIN: tiny, and (on PostgreSQL 16+) it leaves the publish UPDATE a HOT update.
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
        self.broker_epoch = Table(
            "broker_epoch",
            metadata,
            Column("relay", String(64), primary_key=True),
            Column("epoch", String(128), nullable=False),
            Column("seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        )
