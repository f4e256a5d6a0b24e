"""The inbox is pruned by age: an index on processed_at.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from cartera_common.migrations import upgrade_plumbing_v2

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_plumbing_v2(op.get_bind(), "ingest")


def downgrade() -> None:
    op.execute('DROP INDEX "ingest".ix_inbox_processed_at')
