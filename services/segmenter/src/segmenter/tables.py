"""The segmenter's schema: customers, their orders, issues and opportunities, status history, policy."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from cartera_common.db import service_metadata
from cartera_common.orders import MONEY, order_table
from cartera_common.plumbing_tables import Plumbing

SCHEMA = "segmenter"
metadata = service_metadata(SCHEMA)
plumbing = Plumbing(metadata)

TS = DateTime(timezone=True)
WS = String(64)
CUST = String(256)


customer = Table(
    "customer",
    metadata,
    Column("workspace_id", WS, nullable=False),
    Column("customer_id", CUST, nullable=False),
    # profile
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
    Column("segment", Text, Computed("traits ->> 'segment'", persisted=True)),
    Column("consent", JSONB, nullable=False, server_default="{}"),
    Column("profile_at", TS),
    Column("first_seen_at", TS, nullable=False),
    Column("last_event_at", TS, nullable=False),
    # orders and value now
    Column("order_count", Integer, nullable=False, server_default="0"),
    Column("revenue", MONEY, nullable=False, server_default="0"),
    Column("margin", MONEY),
    Column("cost_to_serve", MONEY, nullable=False, server_default="0"),
    Column("first_order_at", TS),
    Column("last_order_at", TS),
    Column("recent_orders_at", ARRAY(TS), nullable=False, server_default="{}"),
    Column("favourite_category", Text),
    # lifecycle (see domain/lifecycle.py)
    Column("status", Text, nullable=False, server_default="prospect"),
    Column("status_since", TS),
    Column("status_reason", Text),
    Column("due_at", TS),
    Column("policy_version", Integer, nullable=False, server_default="0"),
    Column("interest_at", TS),
    Column("interest_kind", Text),
    Column("usual_gap_days", Float),
    Column("frequency", Text),
    Column("p_alive", Float),
    Column("p_alive_at", TS),
    Column("winback_ended_at", TS),
    # why they left, responsiveness
    Column("unhappy", Boolean, nullable=False, server_default="false"),
    Column("leave_reasons", ARRAY(Text), nullable=False, server_default="{}"),
    Column("contacted_at", TS),
    Column("responded_at", TS),
    Column("responsiveness", Text, nullable=False, server_default="unknown"),
    # portfolio classification (see portfolio.py)
    Column("revenue_12m", MONEY, nullable=False, server_default="0"),
    Column("tier", Text),
    Column("rfm_r", SmallInteger),
    Column("rfm_f", SmallInteger),
    Column("rfm_m", SmallInteger),
    Column("pareto", Boolean, nullable=False, server_default="false"),
    Column("classified_at", TS),
    # what was last published on customer-changes
    Column("change_seq", Integer, nullable=False, server_default="0"),
    Column("published", JSONB),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "customer_id"),
    Index("ix_customer_due", "due_at", postgresql_where=text("due_at IS NOT NULL")),
    Index("ix_customer_status", "workspace_id", "status", "customer_id"),
)


customer_order = order_table(metadata)


status_change = Table(
    "status_change",
    metadata,
    Column("id", BigInteger, Identity(), nullable=False),
    Column("workspace_id", WS, nullable=False),
    Column("customer_id", CUST, nullable=False),
    Column("from_status", Text, nullable=False),
    Column("to_status", Text, nullable=False),
    Column("at", TS, nullable=False),
    Column("reason", Text, nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("recorded_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("id"),
    Index("ix_status_change_customer", "workspace_id", "customer_id", "id"),
)


# Complaints, delivery problems, support tickets and call reason codes: why customers leave.
customer_issue = Table(
    "customer_issue",
    metadata,
    Column("workspace_id", WS, nullable=False),
    Column("customer_id", CUST, nullable=False),
    Column("kind", Text, nullable=False),
    Column("ref", Text, nullable=False),
    Column("reason_code", Text),
    Column("detail", Text),
    Column("opened_at", TS, nullable=False),
    Column("resolved_at", TS),
    PrimaryKeyConstraint("workspace_id", "customer_id", "kind", "ref"),
)


opportunity = Table(
    "opportunity",
    metadata,
    Column("workspace_id", WS, nullable=False),
    Column("customer_id", CUST, nullable=False),
    Column("opportunity_id", String(256), nullable=False),
    Column("amount", MONEY),
    Column("currency", String(3)),
    Column("probability", Float),
    Column("expected_close", Date),
    Column("stage", Text),
    Column("state", Text, nullable=False, server_default="open"),
    Column("updated_at", TS, nullable=False),
    PrimaryKeyConstraint("workspace_id", "customer_id", "opportunity_id"),
)


# The recent events of each customer, for the timeline on GET /customers/{id}.
timeline = Table(
    "timeline",
    metadata,
    Column("workspace_id", WS, nullable=False),
    Column("customer_id", CUST, nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("type", Text, nullable=False),
    Column("summary", JSONB, nullable=False),
    PrimaryKeyConstraint("workspace_id", "customer_id", "occurred_at", "event_id"),
)


policy = Table(
    "policy",
    metadata,
    Column("workspace_id", WS, nullable=False),
    Column("version", Integer, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", Text),
    PrimaryKeyConstraint("workspace_id", "version"),
)


# One row per portfolio classification run: when, how many, the cut points it used.
portfolio_run = Table(
    "portfolio_run",
    metadata,
    Column("workspace_id", WS, nullable=False),
    Column("ran_at", TS, nullable=False),
    Column("as_of", TS, nullable=False),
    Column("customers", Integer, nullable=False),
    Column("changed", Integer, nullable=False),
    Column("stats", JSONB, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    # Set once every change the run made is staged on customer-changes; a run left without it
    # (a crash while publishing) is published again by the next one.
    Column("published_at", TS),
    PrimaryKeyConstraint("workspace_id", "ran_at"),
)
