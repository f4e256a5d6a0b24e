"""The orders the value models are fitted on.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 4)


def upgrade() -> None:
    op.create_table(
        "customer_order",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(256), nullable=False),
        sa.Column("order_id", sa.String(256), nullable=False),
        sa.Column("amount", MONEY),
        sa.Column("currency", sa.String(3)),
        sa.Column("margin", MONEY),
        sa.Column("coupon_code", sa.Text),
        sa.Column("categories", ARRAY(sa.Text)),
        sa.Column("occurred_at", sa.DateTime(timezone=True)),
        sa.Column("refunded", MONEY, nullable=False, server_default="0"),
        sa.Column("completed", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("cancelled", sa.Boolean, nullable=False, server_default="false"),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", "order_id", name="pk_customer_order"),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_table("customer_order", schema="scoring")
