"""Builds the scoring service: keeps the orders from `events`, fits the value models, scores customers."""

from __future__ import annotations

import os

from fastapi import FastAPI

from cartera_common.clock import Clock, clock_from_env
from cartera_common.runtime import ServiceRuntime, Subscription, serve
from cartera_common.topics import EVENTS
from scoring import api
from scoring.handlers import apply_events
from scoring.scheduler import RefitScheduler
from scoring.settings import ScoringSettings

DESCRIPTION = """Value now and potential: BG/NBD and Gamma-Gamma fits, P(alive), predicted lifetime
value, retain/develop/abandon, "do we want them back?", lead scores and channels. Built so far: the
orders, BG/NBD and Gamma-Gamma fits (daily and on demand), and per-customer P(alive), expected
purchases, expected order value and predicted lifetime value, published on `scores`."""


def build_app(settings: ScoringSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or ScoringSettings()
    clock = clock or clock_from_env(None)
    runtime = ServiceRuntime(name="scoring", settings=settings, subscriptions=[Subscription(EVENTS, apply_events)])
    runtime.background = [RefitScheduler(runtime.engine, clock, settings.scoring_refit_interval_s)]
    app = runtime.app(title="Cartera scoring", description=DESCRIPTION, routers=[api.router])
    app.state.settings = settings
    app.state.clock = clock
    return app


def main() -> None:
    settings = ScoringSettings()
    serve(
        build_app(settings, clock_from_env(os.environ.get("CARTERA_CLOCK"))),
        host=settings.cartera_host,
        port=settings.scoring_port,
        log_level=settings.cartera_log_level,
    )
