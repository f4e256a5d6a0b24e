"""Each score says when the customer's next purchase is expected (the median, if still a customer).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE scoring.score ADD COLUMN next_purchase_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE scoring.score DROP COLUMN next_purchase_at")
