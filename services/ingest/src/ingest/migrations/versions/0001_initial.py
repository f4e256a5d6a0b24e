"""Workspaces, keys, and the intake log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from cartera_common.migrations import create_plumbing_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_plumbing_tables(op.get_bind(), "ingest")
    op.create_table(
        "workspace",
        sa.Column("workspace_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="ingest",
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA ingest CASCADE")
