"""Fitted models and per-customer scores.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "model_fit",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("fitted_at", TS, nullable=False),
        sa.Column("as_of", TS, nullable=False),
        sa.Column("window_start", TS),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("log_likelihood", sa.Float, nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("converged", sa.Boolean, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("holdout", JSONB),
        sa.PrimaryKeyConstraint("id", name="pk_model_fit"),
        schema="scoring",
    )
    op.create_index("ix_model_fit_workspace", "model_fit", ["workspace_id", "id"], schema="scoring")
    op.create_table(
        "score",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(256), nullable=False),
        sa.Column("p_alive", sa.Float, nullable=False),
        sa.Column("expected_30", sa.Float, nullable=False),
        sa.Column("expected_90", sa.Float, nullable=False),
        sa.Column("expected_365", sa.Float, nullable=False),
        sa.Column("expected_order_value", sa.Float),
        sa.Column("clv", sa.Float),
        sa.Column("fallback", sa.Boolean, nullable=False),
        sa.Column("fit_id", sa.BigInteger, nullable=False),
        sa.Column("scored_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", name="pk_score"),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_table("score", schema="scoring")
    op.drop_table("model_fit", schema="scoring")
