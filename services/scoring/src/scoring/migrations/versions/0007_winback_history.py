"""Each workspace's win-back record: treatment enrolments ended and how many came back.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE scoring.workspace_stats ADD COLUMN winbacks bigint NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE scoring.workspace_stats ADD COLUMN winbacks_won bigint NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE scoring.workspace_stats DROP COLUMN winbacks_won")
    op.execute("ALTER TABLE scoring.workspace_stats DROP COLUMN winbacks")
