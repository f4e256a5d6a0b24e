"""Segmenter settings: shared connections plus its port."""

from __future__ import annotations

from cartera_common.settings import ServiceSettings


class SegmenterSettings(ServiceSettings):
    segmenter_port: int = 8002
