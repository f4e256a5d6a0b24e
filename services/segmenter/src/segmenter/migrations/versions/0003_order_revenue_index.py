"""The completed orders by customer and time, with their amounts: the portfolio run reads only this.

A covering, partial index lets the trailing-revenue pass read the orders in customer order
without touching the table, which halves the portfolio run's biggest cost (docs/portfolio.md).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "segmenter"


def upgrade() -> None:
    op.create_index(
        "ix_customer_order_revenue",
        "customer_order",
        ["workspace_id", "customer_id", "occurred_at"],
        schema=S,
        postgresql_include=["amount", "refunded"],
        postgresql_where=sa.text("completed AND NOT cancelled"),
    )


def downgrade() -> None:
    op.drop_index("ix_customer_order_revenue", "customer_order", schema=S)
