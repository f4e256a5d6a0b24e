"""Shared plumbing for the scoring schema.

Revision ID: 0001
Revises:
"""

from alembic import op

from cartera_common.migrations import create_plumbing_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_plumbing_tables(op.get_bind(), "scoring")


def downgrade() -> None:
    op.execute("DROP SCHEMA scoring CASCADE")
