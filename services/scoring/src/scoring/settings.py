"""Scoring settings: shared connections plus its port."""

from __future__ import annotations

from cartera_common.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    scoring_port: int = 8003
