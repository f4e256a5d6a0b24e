"""Builds the campaigns service. Today it runs the shared plumbing only; the engine comes with its issue."""

from __future__ import annotations

from fastapi import FastAPI

from campaigns.settings import CampaignsSettings
from cartera_common.runtime import ServiceRuntime, serve

DESCRIPTION = """Win-back sequences: escalating, personalised, stopped by a purchase, measured
against a control group. Not built yet: this service currently serves only its
operational endpoints."""


def build_app(settings: CampaignsSettings | None = None) -> FastAPI:
    settings = settings or CampaignsSettings()
    runtime = ServiceRuntime(name="campaigns", settings=settings)
    app = runtime.app(title="Cartera campaigns", description=DESCRIPTION)
    app.state.settings = settings
    return app


def main() -> None:
    settings = CampaignsSettings()
    serve(
        build_app(settings),
        host=settings.cartera_host,
        port=settings.campaigns_port,
        log_level=settings.cartera_log_level,
    )
