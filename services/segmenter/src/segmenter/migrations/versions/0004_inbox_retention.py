"""The inbox is pruned by age: an index on processed_at.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from cartera_common.migrations import upgrade_plumbing_v2

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_plumbing_v2(op.get_bind(), "segmenter")


def downgrade() -> None:
    op.execute('DROP INDEX "segmenter".ix_inbox_processed_at')
