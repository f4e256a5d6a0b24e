"""The four services, their packages and default ports, in start order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port_env: str
    default_port: int


SERVICES = (
    ServiceSpec("ingest", "INGEST_PORT", 8001),
    ServiceSpec("segmenter", "SEGMENTER_PORT", 8002),
    ServiceSpec("scoring", "SCORING_PORT", 8003),
    ServiceSpec("campaigns", "CAMPAIGNS_PORT", 8004),
)
