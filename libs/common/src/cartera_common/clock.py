"""One clock for the whole system, so tests can say "six months later" instead of waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SettableClock:
    """A clock that only moves when told to, for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def clock_from_env(value: str | None) -> Clock:
    """`CARTERA_CLOCK=2027-05-01T00:00:00Z` pins a running system to a moment, for demos and e2e tests."""
    if not value:
        return SystemClock()
    return SettableClock(datetime.fromisoformat(value.replace("Z", "+00:00")))
