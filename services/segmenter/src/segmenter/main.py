"""Builds the segmenter: consumes `events`, keeps customer state, serves the portfolio."""

from __future__ import annotations

from fastapi import FastAPI

from cartera_common.runtime import ServiceRuntime, Subscription, serve
from cartera_common.topics import EVENTS
from segmenter import api
from segmenter.handlers import apply_events
from segmenter.settings import SegmenterSettings

DESCRIPTION = """The portfolio: every customer known from the event stream, with orders, revenue and
profile. Read it with a read key (HTTP Basic user name or Bearer token)."""


def build_app(settings: SegmenterSettings | None = None) -> FastAPI:
    settings = settings or SegmenterSettings()
    runtime = ServiceRuntime(name="segmenter", settings=settings, subscriptions=[Subscription(EVENTS, apply_events)])
    app = runtime.app(title="Cartera segmenter", description=DESCRIPTION, routers=[api.router])
    app.state.settings = settings
    return app


def main() -> None:
    settings = SegmenterSettings()
    serve(
        build_app(settings),
        host=settings.cartera_host,
        port=settings.segmenter_port,
        log_level=settings.cartera_log_level,
    )
