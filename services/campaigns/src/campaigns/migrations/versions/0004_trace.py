"""Enrolments and messages keep the trace of the lapse that started them, to hand it to delivery.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE campaigns.enrolment ADD COLUMN traceparent text")
    op.execute("ALTER TABLE campaigns.message ADD COLUMN traceparent text")


def downgrade() -> None:
    op.execute("ALTER TABLE campaigns.message DROP COLUMN traceparent")
    op.execute("ALTER TABLE campaigns.enrolment DROP COLUMN traceparent")
