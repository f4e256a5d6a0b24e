"""Campaigns settings: shared connections, where messages go, and the engine's pace."""

from __future__ import annotations

from pydantic import Field

from campaigns.delivery.config import DeliverySettings
from cartera_common.settings import ServiceSettings


class CampaignsSettings(ServiceSettings, DeliverySettings):
    campaigns_port: int = 8004
    campaigns_scheduler_interval_s: float = Field(
        default=1.0, gt=0, description="How often due enrolments are stepped."
    )
    campaigns_scheduler_chunk: int = Field(default=2_000, ge=1, description="Enrolments stepped per transaction.")
    campaigns_reentry_interval_s: float = Field(
        default=3600, gt=0, description="How often cooled-off lapsed and lost customers are offered a campaign again."
    )
    campaigns_dispatch_batch: int = Field(default=500, ge=1, description="Messages claimed and sent per round.")
    campaigns_sending_lease_s: float = Field(
        default=60,
        gt=0,
        description="A message still `sending` after this long was cut off by a crash: an email is reported in "
        "doubt, an idempotent channel is offered again. Keep it well above the provider timeout.",
    )
