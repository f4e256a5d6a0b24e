"""Builds the segmenter: consumes `events`, `scores` and `campaign-outcomes`, keeps customer state and
policy, sweeps the customers whose time has come, and serves the portfolio."""

from __future__ import annotations

import gc
import os

from fastapi import FastAPI

from cartera_common.clock import Clock, clock_from_env
from cartera_common.runtime import ServiceRuntime, Subscription, serve
from cartera_common.topics import CAMPAIGN_OUTCOMES, EVENTS, SCORES
from segmenter import api_customers, api_policy, api_portfolio
from segmenter.handlers import Handlers
from segmenter.scheduler import PortfolioScheduler
from segmenter.settings import SegmenterSettings
from segmenter.sweep import Sweeper

DESCRIPTION = """The portfolio: every customer known from the event stream, classified (lifecycle status,
tier, frequency, RFM, Pareto) with its value, history and the reasons it left. Read it with a read
key (HTTP Basic user name or Bearer token); the policy needs an admin key."""


def build_app(settings: SegmenterSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or SegmenterSettings()
    clock = clock or clock_from_env(None)
    handlers = Handlers(clock)
    runtime = ServiceRuntime(
        name="segmenter",
        settings=settings,
        subscriptions=[
            # Two lanes: the hot path's Python and its queries overlap instead of taking turns.
            Subscription(EVENTS, handlers.apply_events, lanes=2),
            Subscription(SCORES, handlers.apply_scores, ".scores"),
            Subscription(CAMPAIGN_OUTCOMES, handlers.apply_outcomes, ".outcomes"),
        ],
    )
    runtime.background = [
        Sweeper(runtime.engine, clock, settings.segmenter_sweep_interval_s, settings.segmenter_sweep_chunk),
        PortfolioScheduler(
            runtime.engine,
            clock,
            settings.segmenter_portfolio_interval_s,
            settings.segmenter_portfolio_first_after_s,
        ),
    ]
    app = runtime.app(
        title="Cartera segmenter",
        description=DESCRIPTION,
        routers=[api_customers.router, api_portfolio.router, api_policy.router],
    )
    app.state.settings = settings
    app.state.clock = clock
    return app


def tune_gc() -> None:
    """A consumed batch allocates tens of thousands of short-lived containers; with the default
    thresholds the collector ran every 700 of them and scanned the whole heap often enough to cost
    a fifth of the batch's Python time. Objects built at start-up are frozen out of its scans."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def main() -> None:
    settings = SegmenterSettings()
    app = build_app(settings, clock_from_env(os.environ.get("CARTERA_CLOCK")))
    tune_gc()
    serve(
        app,
        host=settings.cartera_host,
        port=settings.segmenter_port,
        log_level=settings.cartera_log_level,
    )
