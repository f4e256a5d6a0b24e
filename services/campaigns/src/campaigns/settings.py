"""Campaigns settings: shared connections plus its port."""

from __future__ import annotations

from cartera_common.settings import ServiceSettings


class CampaignsSettings(ServiceSettings):
    campaigns_port: int = 8004
