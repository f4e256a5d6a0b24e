"""Segmenter settings: shared connections plus its port and its timers."""

from __future__ import annotations

from pydantic import Field

from cartera_common.settings import ServiceSettings


class SegmenterSettings(ServiceSettings):
    segmenter_port: int = 8002
    segmenter_sweep_interval_s: float = Field(
        default=1.0, gt=0, description="How often due customers are re-evaluated."
    )
    segmenter_sweep_chunk: int = Field(default=5_000, ge=1, description="Customers re-evaluated per transaction.")
    segmenter_portfolio_interval_s: float = Field(
        default=900, gt=0, description="How often every workspace's tiers, RFM and Pareto are recomputed."
    )
    segmenter_portfolio_first_after_s: float = Field(
        default=10, ge=0, description="How long after start the first portfolio recompute runs."
    )
