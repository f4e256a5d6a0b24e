"""Ingest's settings: shared connections plus the intake limits operators tune."""

from __future__ import annotations

from pydantic import Field

from cartera_common.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    ingest_port: int = 8001
    ingest_workers: int = Field(default=1, ge=1, le=64, description="HTTP worker processes.")
    ingest_max_batch: int = Field(default=1000, ge=1, description="Events per POST /v1/events.")
    ingest_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # The intake log doubles as the dedupe window for event ids and the source for `cartera replay`.
    ingest_intake_retention_s: int = Field(default=30 * 24 * 3600, ge=0)
    cartera_admin_key: str | None = None
    cartera_write_key: str | None = None
    cartera_read_key: str | None = None
