"""Builds the scoring service: keeps orders, profiles and activity from `events` and standings from
`customer-changes`, fits the value models, scores customers and leads."""

from __future__ import annotations

import os

from fastapi import FastAPI

from cartera_common.clock import Clock, clock_from_env
from cartera_common.runtime import ServiceRuntime, Subscription, serve
from cartera_common.topics import CAMPAIGN_OUTCOMES, CUSTOMER_CHANGES, EVENTS
from scoring import api, api_leads
from scoring.handlers import Handlers
from scoring.scheduler import RefitScheduler
from scoring.settings import ScoringSettings

DESCRIPTION = """Value now and potential: BG/NBD and Gamma-Gamma fits (daily and on demand), P(alive),
expected purchases, predicted lifetime value, retain / develop / maintain / abandon, "do we want them
back?" for lapsed customers, and lead scores with their contact channel and look-alike similarity to
the best customers. Changes are published on `scores`. Read with a read key; refits and rules need an
admin key."""


def build_app(settings: ScoringSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or ScoringSettings()
    clock = clock or clock_from_env(None)
    handlers = Handlers(clock)
    runtime = ServiceRuntime(
        name="scoring",
        settings=settings,
        subscriptions=[
            Subscription(EVENTS, handlers.apply_events),
            Subscription(CUSTOMER_CHANGES, handlers.apply_changes, ".changes"),
            Subscription(CAMPAIGN_OUTCOMES, handlers.apply_outcomes, ".outcomes"),
        ],
    )
    runtime.background = [RefitScheduler(runtime.engine, clock, settings.scoring_refit_interval_s)]
    app = runtime.app(title="Cartera scoring", description=DESCRIPTION, routers=[api.router, api_leads.router])
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
