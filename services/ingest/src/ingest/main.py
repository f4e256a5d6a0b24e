"""Builds the ingest service: intake log relay, key announcements, HTTP API."""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI

from cartera_common.clock import Clock, clock_from_env
from cartera_common.openapi import with_event_schemas
from cartera_common.runtime import ServiceRuntime, serve
from ingest import api_admin, api_events, api_import, api_segment
from ingest.bootstrap import ensure_default_workspace
from ingest.keys import reannounce_all
from ingest.settings import IngestSettings

log = logging.getLogger("ingest")

DESCRIPTION = """Every event enters Cartera here. Send Cartera's flat JSON events to `/v1/events`,
point a Segment SDK at this host (`/v1/track`, `/v1/identify`, `/v1/batch`, …), or load history
with `/v1/import`. A 202 means the event is durable in the intake log. Authenticate with a key as
the HTTP Basic user name or as a Bearer token."""


def build_app(settings: IngestSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    clock = clock or clock_from_env(None)
    runtime = ServiceRuntime(
        name="ingest",
        settings=settings,
        follow_access=False,  # ingest is where keys come from
        outbox_retention_s=settings.ingest_intake_retention_s,
        on_new_epoch=reannounce_all,
    )

    async def bootstrap() -> None:
        generated = await ensure_default_workspace(runtime.engine, settings, clock)
        for role, key in generated.items():
            log.warning("generated the default workspace's %s key (shown once): %s", role, key)

    runtime.on_start = bootstrap
    app = runtime.app(
        title="Cartera ingest",
        description=DESCRIPTION,
        routers=[api_events.router, api_segment.router, api_import.router, api_admin.router],
    )
    app.state.settings = settings
    app.state.clock = clock
    with_event_schemas(app)
    return app


def create_app() -> FastAPI:
    """The factory each worker process calls."""
    return build_app(IngestSettings(), clock_from_env(os.environ.get("CARTERA_CLOCK")))


def main() -> None:
    s = IngestSettings()
    target: FastAPI | str = "ingest.main:create_app" if s.ingest_workers > 1 else create_app()
    serve(target, host=s.cartera_host, port=s.ingest_port, log_level=s.cartera_log_level, workers=s.ingest_workers)
