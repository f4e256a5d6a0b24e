"""Builds the campaigns service: follows lapses, scores and the event stream, steps the durable timers,
delivers the messages, and serves campaigns, enrolments, reports and unsubscribe links."""

from __future__ import annotations

import os

import httpx
from fastapi import FastAPI

from campaigns import api_campaigns, api_enrolments, api_public
from campaigns.delivery.channels import senders_from
from campaigns.delivery.templates import Templates
from campaigns.dispatcher import Dispatcher
from campaigns.handlers import Handlers
from campaigns.messages import Composer, Links
from campaigns.scheduler import Scheduler
from campaigns.settings import CampaignsSettings
from cartera_common.clock import Clock, clock_from_env
from cartera_common.runtime import ServiceRuntime, Subscription, serve
from cartera_common.topics import CUSTOMER_CHANGES, EVENTS, SCORES

DESCRIPTION = """Win-back sequences: a customer who lapses enters an escalating, personalised sequence
(email, webhook, SMS, call tasks), which a purchase stops at once; a reproducible control group
measures what it recovered. Read with a read key (HTTP Basic user name or Bearer token); campaigns,
templates and pacing change with an admin key. Unsubscribe links need no key: they are signed."""


def build_app(settings: CampaignsSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or CampaignsSettings()
    clock = clock or clock_from_env(None)
    links = Links(settings.campaigns_public_url, settings.campaigns_unsubscribe_secret)
    composer = Composer(Templates(), links)
    handlers = Handlers(clock, composer)
    runtime = ServiceRuntime(
        name="campaigns",
        settings=settings,
        subscriptions=[
            Subscription(CUSTOMER_CHANGES, handlers.apply_changes),
            Subscription(EVENTS, handlers.apply_events, ".events"),
            Subscription(SCORES, handlers.apply_scores, ".scores"),
        ],
    )
    client = httpx.AsyncClient(timeout=settings.campaigns_send_timeout_s)
    dispatcher = Dispatcher(
        runtime.engine,
        senders_from(settings, client),
        links,
        batch=settings.campaigns_dispatch_batch,
        lease_s=settings.campaigns_sending_lease_s,
    )
    scheduler = Scheduler(
        runtime.engine,
        composer,
        clock,
        interval_s=settings.campaigns_scheduler_interval_s,
        chunk=settings.campaigns_scheduler_chunk,
        reentry_interval_s=settings.campaigns_reentry_interval_s,
        on_queued=dispatcher.wake,
    )
    runtime.background = [scheduler, dispatcher]
    app = runtime.app(
        title="Cartera campaigns",
        description=DESCRIPTION,
        routers=[api_campaigns.router, api_enrolments.router, api_public.router],
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.composer = composer
    app.state.dispatcher = dispatcher
    return app


def main() -> None:
    settings = CampaignsSettings()
    serve(
        build_app(settings, clock_from_env(os.environ.get("CARTERA_CLOCK"))),
        host=settings.cartera_host,
        port=settings.campaigns_port,
        log_level=settings.cartera_log_level,
    )
