"""Customers and their orders.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from cartera_common.migrations import create_plumbing_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 4)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_plumbing_tables(op.get_bind(), "segmenter")
    op.create_table(
        "customer",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(256), nullable=False),
        *[
            sa.Column(name, sa.Text)
            for name in (
                "name",
                "email",
                "phone",
                "locale",
                "time_zone",
                "industry",
                "company_size",
                "region",
                "country",
            )
        ],
        sa.Column("traits", JSONB, nullable=False, server_default="{}"),
        sa.Column("profile_at", TS),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_event_at", TS, nullable=False),
        sa.Column("order_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("revenue", MONEY, nullable=False, server_default="0"),
        sa.Column("first_order_at", TS),
        sa.Column("last_order_at", TS),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", name="pk_customer"),
        schema="segmenter",
    )
    op.create_table(
        "customer_order",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(256), nullable=False),
        sa.Column("order_id", sa.String(256), nullable=False),
        sa.Column("amount", MONEY),
        sa.Column("currency", sa.String(3)),
        sa.Column("margin", MONEY),
        sa.Column("coupon_code", sa.Text),
        sa.Column("occurred_at", TS),
        sa.Column("refunded", MONEY, nullable=False, server_default="0"),
        sa.Column("completed", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("cancelled", sa.Boolean, nullable=False, server_default="false"),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", "order_id", name="pk_customer_order"),
        schema="segmenter",
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA segmenter CASCADE")
