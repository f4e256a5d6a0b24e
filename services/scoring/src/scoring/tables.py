"""The scoring schema: the orders the value models are fitted on, plus the shared plumbing."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

from cartera_common.db import service_metadata
from cartera_common.orders import order_table
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

score = Table(
    "score",
    metadata,
    Column("workspace_id", String(64), nullable=False),
    Column("customer_id", String(256), nullable=False),
    Column("p_alive", Float, nullable=False),
    Column("expected_30", Float, nullable=False),
    Column("expected_90", Float, nullable=False),
    Column("expected_365", Float, nullable=False),
    Column("expected_order_value", Float),
    Column("clv", Float),
    # Too little history (no repeat purchase yet): spend and value come from the population.
    Column("fallback", Boolean, nullable=False),
    Column("fit_id", BigInteger, nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("workspace_id", "customer_id"),
)
