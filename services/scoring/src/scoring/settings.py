"""Scoring settings: shared connections plus its port."""

from __future__ import annotations

from pydantic import Field

from cartera_common.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    scoring_port: int = 8003
    scoring_refit_interval_s: float = Field(
        default=86_400, gt=0, description="How often every workspace's value models are refitted and rescored."
    )
