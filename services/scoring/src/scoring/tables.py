"""The scoring schema: the orders the value models are fitted on, plus the shared plumbing."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Numeric, PrimaryKeyConstraint, String, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY

from cartera_common.db import service_metadata
from cartera_common.plumbing_tables import Plumbing

SCHEMA = "scoring"
metadata = service_metadata(SCHEMA)
plumbing = Plumbing(metadata)

MONEY = Numeric(18, 4)

# The same shape as every service's order table, so cartera_common.orders upserts into it.
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
    Column("categories", ARRAY(Text)),
    Column("occurred_at", DateTime(timezone=True)),
    Column("refunded", MONEY, nullable=False, server_default="0"),
    Column("completed", Boolean, nullable=False, server_default="false"),
    Column("cancelled", Boolean, nullable=False, server_default="false"),
    PrimaryKeyConstraint("workspace_id", "customer_id", "order_id"),
)
