"""Quadrants, win-back decisions and lead scores: the score row grows, leads get rows without a fit,
and scoring keeps profiles, daily activity, workspace statistics and rules.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "scoring"
TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(18, 4)
# A lead has a score row before any fit: the model's columns become optional.
_NOW_OPTIONAL = ("p_alive", "expected_30", "expected_90", "expected_365", "fallback", "fit_id")
_NEW_SCORE_COLUMNS = (
    sa.Column("value_now", sa.Float),
    sa.Column("quadrant", sa.Text),
    sa.Column("quadrant_reason", sa.Text),
    sa.Column("winback_worth", sa.Boolean),
    sa.Column("winback_intensity", sa.Text),
    sa.Column("p_reactivation", sa.Float),
    sa.Column("predicted_value", sa.Float),
    sa.Column("expected_return", sa.Float),
    sa.Column("winback_cost", sa.Float),
    sa.Column("lead_score", sa.Float),
    sa.Column("lead_fit", sa.Float),
    sa.Column("lead_engagement", sa.Float),
    sa.Column("lookalike", sa.Float),
    sa.Column("channel", sa.Text),
    sa.Column("published", JSONB),
    sa.Column("publish_seq", sa.Integer, nullable=False, server_default="0"),
)


def upgrade() -> None:
    for name in _NOW_OPTIONAL:
        op.alter_column("score", name, nullable=True, schema=S)
    for column in _NEW_SCORE_COLUMNS:
        op.add_column("score", column, schema=S)
    # Until now the last published P(alive) was the stored one.
    op.execute("UPDATE scoring.score SET published = jsonb_build_object('p_alive', p_alive)")
    op.execute(
        "CREATE INDEX ix_score_lead ON scoring.score (workspace_id, lead_score DESC, customer_id DESC) "
        "WHERE lead_score IS NOT NULL"
    )
    op.create_table(
        "customer_profile",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(256), nullable=False),
        sa.Column("status", sa.Text),
        sa.Column("tier", sa.Text),
        sa.Column("pareto", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("segment", sa.Text),
        sa.Column("industry", sa.Text),
        sa.Column("company_size", sa.Text),
        sa.Column("region", sa.Text),
        sa.Column("country", sa.Text),
        sa.Column("traits", JSONB, nullable=False, server_default="{}"),
        sa.Column("standing_at", TS),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", name="pk_customer_profile"),
        schema=S,
    )
    op.create_table(
        "customer_activity",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(256), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("amount", MONEY, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", "kind", "day", name="pk_customer_activity"),
        schema=S,
    )
    op.create_table(
        "workspace_stats",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("computed_at", TS),
        sa.Column("value_threshold", sa.Float),
        sa.Column("potential_threshold", sa.Float),
        sa.Column("repeat_rate", sa.Float),
        sa.Column("top_profile", JSONB),
        sa.Column("lapsed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("returned", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_workspace_stats"),
        schema=S,
    )
    op.create_table(
        "scoring_rules",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.Text),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_scoring_rules"),
        schema=S,
    )


def downgrade() -> None:
    for table in ("scoring_rules", "workspace_stats", "customer_activity", "customer_profile"):
        op.drop_table(table, schema=S)
    op.execute("DROP INDEX scoring.ix_score_lead")
    op.execute("DELETE FROM scoring.score WHERE p_alive IS NULL")
    for column in reversed(_NEW_SCORE_COLUMNS):
        op.drop_column("score", column.name, schema=S)
    for name in _NOW_OPTIONAL:
        op.alter_column("score", name, nullable=False, schema=S)
