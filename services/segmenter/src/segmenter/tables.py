"""The segmenter's schema: customers and the orders their value is computed from."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, Numeric, PrimaryKeyConstraint, String, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from cartera_common.db import service_metadata
from cartera_common.plumbing_tables import Plumbing

SCHEMA = "segmenter"
metadata = service_metadata(SCHEMA)
plumbing = Plumbing(metadata)

MONEY = Numeric(18, 4)


customer = Table(
    "customer",
    metadata,
    Column("workspace_id", String(64), nullable=False),
    Column("customer_id", String(256), nullable=False),
    Column("name", Text),
    Column("email", Text),
    Column("phone", Text),
    Column("locale", Text),
    Column("time_zone", Text),
    Column("industry", Text),
    Column("company_size", Text),
    Column("region", Text),
    Column("country", Text),
    Column("traits", JSONB, nullable=False, server_default="{}"),
    Column("profile_at", DateTime(timezone=True)),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_event_at", DateTime(timezone=True), nullable=False),
    Column("order_count", Integer, nullable=False, server_default="0"),
    Column("revenue", MONEY, nullable=False, server_default="0"),
    Column("first_order_at", DateTime(timezone=True)),
    Column("last_order_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "customer_id"),
)


customer_order = Table(
    "customer_order",
    metadata,
    Column("workspace_id", String(64), nullable=False),
    Column("customer_id", String(256), nullable=False),
    Column("order_id", String(256), nullable=False),
    Column("amount", MONEY),
    Column("currency", String(3)),
    Column("margin", MONEY),
    Column("coupon_code", Text),
    Column("occurred_at", DateTime(timezone=True)),
    Column("refunded", MONEY, nullable=False, server_default="0"),
    Column("completed", Boolean, nullable=False, server_default="false"),
    Column("cancelled", Boolean, nullable=False, server_default="false"),
    PrimaryKeyConstraint("workspace_id", "customer_id", "order_id"),
)
