"""A loop a service runs beside its consumers on a timer (a sweep, a scheduled recompute)."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

from cartera_common.errors import is_transient

log = logging.getLogger(__name__)


class Periodic(ABC):
    """Calls `tick()` `first_after_s` after start and then every `interval_s` until stopped; a failed
    tick is logged (briefly when the database or broker is away) and the next one runs on time."""

    interval_s: float = 1.0
    first_after_s: float = 0.0

    def __init__(self) -> None:
        self._stopping = asyncio.Event()

    @abstractmethod
    async def tick(self) -> None: ...

    async def run(self) -> None:
        wait = self.first_after_s
        while not await self._sleep(wait):
            wait = self.interval_s
            try:
                await self.tick()
            except Exception as exc:
                if is_transient(exc):
                    log.warning("%s waiting for its servers: %s", type(self).__name__, type(exc).__name__)
                else:
                    log.exception("%s failed", type(self).__name__)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()

    async def _sleep(self, seconds: float) -> bool:
        """True when stopping."""
        if seconds <= 0:
            return self._stopping.is_set()
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True
