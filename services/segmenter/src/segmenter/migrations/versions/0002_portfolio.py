"""Lifecycle, classification, issues, opportunities, timeline and policy.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "segmenter"
MONEY = sa.Numeric(18, 4)
TS = sa.DateTime(timezone=True)
WS = sa.String(64)
CUST = sa.String(256)

_CUSTOMER_COLUMNS = [
    sa.Column("segment", sa.Text, sa.Computed("traits ->> 'segment'", persisted=True)),
    sa.Column("consent", JSONB, nullable=False, server_default="{}"),
    sa.Column("margin", MONEY),
    sa.Column("cost_to_serve", MONEY, nullable=False, server_default="0"),
    sa.Column("recent_orders_at", ARRAY(TS), nullable=False, server_default="{}"),
    sa.Column("favourite_category", sa.Text),
    sa.Column("status", sa.Text, nullable=False, server_default="prospect"),
    sa.Column("status_since", TS),
    sa.Column("status_reason", sa.Text),
    sa.Column("due_at", TS),
    sa.Column("policy_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("interest_at", TS),
    sa.Column("interest_kind", sa.Text),
    sa.Column("usual_gap_days", sa.Float),
    sa.Column("frequency", sa.Text),
    sa.Column("p_alive", sa.Float),
    sa.Column("p_alive_at", TS),
    sa.Column("winback_ended_at", TS),
    sa.Column("unhappy", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("leave_reasons", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("contacted_at", TS),
    sa.Column("responded_at", TS),
    sa.Column("responsiveness", sa.Text, nullable=False, server_default="unknown"),
    sa.Column("revenue_12m", MONEY, nullable=False, server_default="0"),
    sa.Column("tier", sa.Text),
    sa.Column("rfm_r", sa.SmallInteger),
    sa.Column("rfm_f", sa.SmallInteger),
    sa.Column("rfm_m", sa.SmallInteger),
    sa.Column("pareto", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("classified_at", TS),
    sa.Column("change_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("published", JSONB),
]


def upgrade() -> None:
    for column in _CUSTOMER_COLUMNS:
        op.add_column("customer", column, schema=S)
    # Customers are updated on every batch; room on the page keeps those updates HOT.
    op.execute("ALTER TABLE segmenter.customer SET (fillfactor = 80)")
    op.create_index("ix_customer_due", "customer", ["due_at"], schema=S, postgresql_where=sa.text("due_at IS NOT NULL"))
    op.create_index("ix_customer_status", "customer", ["workspace_id", "status", "customer_id"], schema=S)
    op.add_column("customer_order", sa.Column("categories", ARRAY(sa.Text)), schema=S)

    op.create_table(
        "status_change",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("workspace_id", WS, nullable=False),
        sa.Column("customer_id", CUST, nullable=False),
        sa.Column("from_status", sa.Text, nullable=False),
        sa.Column("to_status", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("policy_version", sa.Integer, nullable=False),
        sa.Column("recorded_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_status_change"),
        schema=S,
    )
    op.create_index("ix_status_change_customer", "status_change", ["workspace_id", "customer_id", "id"], schema=S)
    op.create_table(
        "customer_issue",
        sa.Column("workspace_id", WS, nullable=False),
        sa.Column("customer_id", CUST, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("reason_code", sa.Text),
        sa.Column("detail", sa.Text),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("resolved_at", TS),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", "kind", "ref", name="pk_customer_issue"),
        schema=S,
    )
    op.create_table(
        "opportunity",
        sa.Column("workspace_id", WS, nullable=False),
        sa.Column("customer_id", CUST, nullable=False),
        sa.Column("opportunity_id", sa.String(256), nullable=False),
        sa.Column("amount", MONEY),
        sa.Column("currency", sa.String(3)),
        sa.Column("probability", sa.Float),
        sa.Column("expected_close", sa.Date),
        sa.Column("stage", sa.Text),
        sa.Column("state", sa.Text, nullable=False, server_default="open"),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", "opportunity_id", name="pk_opportunity"),
        schema=S,
    )
    op.create_table(
        "timeline",
        sa.Column("workspace_id", WS, nullable=False),
        sa.Column("customer_id", CUST, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("summary", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", "occurred_at", "event_id", name="pk_timeline"),
        schema=S,
    )
    op.create_table(
        "policy",
        sa.Column("workspace_id", WS, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.Text),
        sa.PrimaryKeyConstraint("workspace_id", "version", name="pk_policy"),
        schema=S,
    )
    op.create_table(
        "portfolio_run",
        sa.Column("workspace_id", WS, nullable=False),
        sa.Column("ran_at", TS, nullable=False),
        sa.Column("as_of", TS, nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("stats", JSONB, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("published_at", TS),
        sa.PrimaryKeyConstraint("workspace_id", "ran_at", name="pk_portfolio_run"),
        schema=S,
    )


def downgrade() -> None:
    for name in ("portfolio_run", "policy", "timeline", "opportunity", "customer_issue", "status_change"):
        op.drop_table(name, schema=S)
    op.drop_column("customer_order", "categories", schema=S)
    op.drop_index("ix_customer_status", "customer", schema=S)
    op.drop_index("ix_customer_due", "customer", schema=S)
    for column in reversed(_CUSTOMER_COLUMNS):
        op.drop_column("customer", column.name, schema=S)
