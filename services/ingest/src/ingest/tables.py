"""Ingest's schema: workspaces, plus the shared plumbing (the outbox is the intake log)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table, func

from cartera_common.db import service_metadata
from cartera_common.plumbing_tables import Plumbing

SCHEMA = "ingest"
metadata = service_metadata(SCHEMA)
plumbing = Plumbing(metadata)

workspace = Table(
    "workspace",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
