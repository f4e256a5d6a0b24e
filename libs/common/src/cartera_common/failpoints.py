"""Crash points for recovery tests: `CARTERA_FAILPOINTS="consumer.after_commit=0.2"` makes the
process exit abruptly at that point with that probability. Unset (always, in production) it costs
one dictionary lookup."""

from __future__ import annotations

import os
import random

_RATES: dict[str, float] = {}
for _item in filter(None, os.environ.get("CARTERA_FAILPOINTS", "").split(",")):
    _name, _, _rate = _item.partition("=")
    _RATES[_name.strip()] = float(_rate or 1)


def maybe_crash(name: str) -> None:
    rate = _RATES.get(name)
    if rate and random.random() < rate:  # noqa: S311 - fault injection, not security
        os._exit(99)
