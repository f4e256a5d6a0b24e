"""The scoring schema: the orders the value models are fitted on, the fits, the scores, what scoring
knows of each customer beyond its orders, the workspace's rules, plus the shared plumbing."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from cartera_common.db import service_metadata
from cartera_common.orders import MONEY, order_table
from cartera_common.plumbing_tables import Plumbing

SCHEMA = "scoring"
metadata = service_metadata(SCHEMA)
plumbing = Plumbing(metadata)

customer_order = order_table(metadata)


# Every fit is kept: parameters, how well it fitted, on what, and how it did on a later holdout.
model_fit = Table(
    "model_fit",
    metadata,
    Column("id", BigInteger, Identity(), nullable=False),
    Column("workspace_id", String(64), nullable=False),
    Column("kind", Text, nullable=False),  # bgnbd | gamma_gamma
    Column("fitted_at", DateTime(timezone=True), nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),  # the calibration end
    Column("window_start", DateTime(timezone=True)),
    Column("params", JSONB, nullable=False),
    Column("log_likelihood", Float, nullable=False),
    Column("customers", Integer, nullable=False),
    Column("converged", Boolean, nullable=False),
    Column("message", Text, nullable=False),
    Column("holdout", JSONB),
    PrimaryKeyConstraint("id"),
    Index("ix_model_fit_workspace", "workspace_id", "id"),
)

# One row per customer scoring knows: buyers (the models' figures, quadrant, win-back when lapsed)
# and leads (lead score and channel). A column that does not apply is null, never 0.
score = Table(
    "score",
    metadata,
    Column("workspace_id", String(64), nullable=False),
    Column("customer_id", String(256), nullable=False),
    Column("p_alive", Float),
    Column("expected_30", Float),
    Column("expected_90", Float),
    Column("expected_365", Float),
    Column("expected_order_value", Float),
    Column("clv", Float),
    # Too little history (no repeat purchase yet): spend and value come from the population.
    Column("fallback", Boolean),
    Column("fit_id", BigInteger),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Column("next_purchase_at", DateTime(timezone=True)),  # median, if still a customer
    Column("value_now", Float),  # trailing 12 months' margin (or revenue) minus cost to serve
    Column("quadrant", Text),
    Column("quadrant_reason", Text),
    Column("winback_worth", Boolean),
    Column("winback_intensity", Text),
    Column("p_reactivation", Float),
    Column("predicted_value", Float),
    Column("expected_return", Float),
    Column("winback_cost", Float),
    Column("lead_score", Float),
    Column("lead_fit", Float),
    Column("lead_engagement", Float),
    Column("lookalike", Float),
    Column("channel", Text),
    Column("published", JSONB),  # what `scores_updated` last said, to publish only what changed
    Column("publish_seq", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("workspace_id", "customer_id"),
    Index(
        "ix_score_lead",
        "workspace_id",
        text("lead_score DESC"),
        text("customer_id DESC"),
        postgresql_where=text("lead_score IS NOT NULL"),
    ),
)

# Who the customer is: the segmenter's standing (from `customer-changes`) and the profile (from
# `profile_updated`), for the lead score, look-alikes and the win-back decision.
customer_profile = Table(
    "customer_profile",
    metadata,
    Column("workspace_id", String(64), nullable=False),
    Column("customer_id", String(256), nullable=False),
    Column("status", Text),
    Column("tier", Text),
    Column("pareto", Boolean, nullable=False, server_default="false"),
    Column("segment", Text),
    Column("industry", Text),
    Column("company_size", Text),
    Column("region", Text),
    Column("country", Text),
    Column("traits", JSONB, nullable=False, server_default="{}"),
    Column("standing_at", DateTime(timezone=True)),  # the latest `customer_changed` applied
    PrimaryKeyConstraint("workspace_id", "customer_id"),
)

# What the customer did (engagement) or cost to serve, per UTC day: decayed and summed when scoring.
customer_activity = Table(
    "customer_activity",
    metadata,
    Column("workspace_id", String(64), nullable=False),
    Column("customer_id", String(256), nullable=False),
    Column("kind", Text, nullable=False),  # visit opened clicked lead demo trial quote | cost
    Column("day", Date, nullable=False),
    Column("count", Integer, nullable=False),
    Column("amount", MONEY, nullable=False, server_default="0"),
    PrimaryKeyConstraint("workspace_id", "customer_id", "kind", "day"),
)

# Per workspace: thresholds and the top customers' profile from the last full rescoring, and the
# comeback history counted from `customer-changes`.
workspace_stats = Table(
    "workspace_stats",
    metadata,
    Column("workspace_id", String(64), nullable=False),
    Column("computed_at", DateTime(timezone=True)),
    Column("value_threshold", Float),
    Column("potential_threshold", Float),
    Column("repeat_rate", Float),
    Column("top_profile", JSONB),
    Column("lapsed", BigInteger, nullable=False, server_default="0"),
    Column("returned", BigInteger, nullable=False, server_default="0"),
    # Win-backs that ran to an end in the treatment group, and those that brought the customer back.
    Column("winbacks", BigInteger, nullable=False, server_default="0"),
    Column("winbacks_won", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("workspace_id"),
)

scoring_rules = Table(
    "scoring_rules",
    metadata,
    Column("workspace_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", Text),
    PrimaryKeyConstraint("workspace_id"),
)
