"""Builds the scoring service. Today it keeps the orders from `events`; the models come with its issue."""

from __future__ import annotations

from fastapi import FastAPI

from cartera_common.runtime import ServiceRuntime, Subscription, serve
from cartera_common.topics import EVENTS
from scoring.handlers import apply_events
from scoring.settings import ScoringSettings

DESCRIPTION = """Value now and potential: BG/NBD and Gamma-Gamma fits, P(alive), predicted lifetime
value, retain/develop/abandon, "do we want them back?", lead scores and channels. Not built yet:
this service keeps the orders the models will be fitted on and serves its operational endpoints."""


def build_app(settings: ScoringSettings | None = None) -> FastAPI:
    settings = settings or ScoringSettings()
    runtime = ServiceRuntime(name="scoring", settings=settings, subscriptions=[Subscription(EVENTS, apply_events)])
    app = runtime.app(title="Cartera scoring", description=DESCRIPTION)
    app.state.settings = settings
    return app


def main() -> None:
    settings = ScoringSettings()
    serve(
        build_app(settings),
        host=settings.cartera_host,
        port=settings.scoring_port,
        log_level=settings.cartera_log_level,
    )
