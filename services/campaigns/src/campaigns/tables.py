"""The campaigns schema, as migration 0003 creates it (a test holds the two together), plus the
shared plumbing. Queries are written in SQL; these declarations are the schema's one description."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, PrimaryKeyConstraint, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from cartera_common.db import service_metadata
from cartera_common.plumbing_tables import Plumbing

SCHEMA = "campaigns"
metadata = service_metadata(SCHEMA)
plumbing = Plumbing(metadata)


def _at(name: str, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


campaign = Table(
    "campaign",
    metadata,
    Column("workspace_id", Text, nullable=False),
    Column("campaign_id", Text, nullable=False),
    Column("definition", JSONB),  # NULL: the ready-made definition
    Column("enabled", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    _at("updated_at", nullable=False),
    Column("updated_by", Text),
    PrimaryKeyConstraint("workspace_id", "campaign_id"),
)

customer = Table(
    "customer",
    metadata,
    Column("workspace_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("snapshot", JSONB),
    _at("snapshot_at"),
    Column("decision", JSONB),
    _at("decision_at"),
    Column("consent", JSONB, nullable=False),
    _at("unsubscribed_at"),
    PrimaryKeyConstraint("workspace_id", "customer_id"),
)

enrolment = Table(
    "enrolment",
    metadata,
    Column("enrolment_id", Text, primary_key=True),
    Column("workspace_id", Text, nullable=False),
    Column("campaign_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("control", Boolean, nullable=False),
    Column("priority", Integer, nullable=False),
    _at("enrolled_at", nullable=False),
    Column("step", Integer, nullable=False),
    _at("due_at"),  # the enrolment's timer, indexed while active
    Column("state", Text, nullable=False),
    Column("responded", Boolean, nullable=False),
    Column("outcome", Text),
    _at("ended_at"),
    Column("credit", JSONB),
    Column("path", JSONB, nullable=False),
    Column("traceparent", Text),  # the lapse's trace, handed on to delivery
)

message = Table(
    "message",
    metadata,
    Column("message_id", Text, primary_key=True),
    Column("workspace_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("enrolment_id", Text, nullable=False),
    Column("campaign_id", Text, nullable=False),
    Column("step", Integer, nullable=False),
    Column("variant", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("template_id", Text, nullable=False),
    Column("coupon", Text),
    Column("offer", JSONB, nullable=False),
    Column("call_to_action", Text, nullable=False),
    Column("recipient", Text),
    Column("subject", Text),
    Column("body", Text),
    Column("html", Text),
    Column("state", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    _at("next_attempt_at", nullable=False),  # wall-clock time: delivery happens in the real world
    _at("created_at", nullable=False),  # business time: the frequency cap and daily limit count it
    _at("sending_at"),
    _at("sent_at"),
    Column("provider_id", Text),
    Column("error", Text),
    _at("delivered_at"),
    _at("opened_at"),
    _at("clicked_at"),
    _at("replied_at"),
    _at("bounced_at"),
    Column("traceparent", Text),
)

template = Table(
    "template",
    metadata,
    Column("workspace_id", Text, nullable=False),
    Column("template_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("html", Text),
    _at("updated_at", nullable=False),
    PrimaryKeyConstraint("workspace_id", "template_id"),
)

pacing = Table(
    "pacing",
    metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("rules", JSONB, nullable=False),
    _at("updated_at", nullable=False),
)
