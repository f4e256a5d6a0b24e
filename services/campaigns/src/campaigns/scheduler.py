"""The durable timers: enrolments whose `due_at` has come are stepped, and cooled-off customers re-enter.

Timers are rows, so they survive restarts; what came due while the service was down runs on its
first tick. Replicas tick side by side: each claims different enrolments (`SKIP LOCKED`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from campaigns import engine
from campaigns.domain.sequences import READY_MADE
from campaigns.engine import Batch
from campaigns.messages import Composer
from cartera_common.clock import Clock
from cartera_common.metrics import SCHEDULER_BACKLOG
from cartera_common.periodic import Periodic

log = logging.getLogger(__name__)

_BACKLOG = text(
    """
    SELECT (SELECT count(*) FROM enrolment WHERE state = 'active' AND due_at <= :now),
           (SELECT count(*) FROM message WHERE state IN ('queued', 'retrying'))
    """
)

SHORTEST_COOLOFF = min(c.reentry for c in READY_MADE.values())


async def step_all(engine_: AsyncEngine, composer: Composer, clock: Clock, *, chunk: int) -> int:
    """Steps everything due now, a chunk per transaction; returns how many enrolments moved."""
    total = 0
    while True:
        async with engine_.begin() as conn:
            n = await engine.step_due(conn, Batch(composer, clock.now()), limit=chunk)
        total += n
        if n < chunk:
            return total


async def reenter_all(engine_: AsyncEngine, composer: Composer, clock: Clock, *, chunk: int) -> int:
    started, after = 0, ("", "")
    while True:
        async with engine_.begin() as conn:
            n, resume = await engine.reenter(
                conn, Batch(composer, clock.now()), shortest_cooloff=SHORTEST_COOLOFF, limit=chunk, after=after
            )
        started += n
        if resume is None:
            return started
        after = resume


class Scheduler(Periodic):
    def __init__(
        self,
        engine_: AsyncEngine,
        composer: Composer,
        clock: Clock,
        *,
        interval_s: float = 1.0,
        chunk: int = 2_000,
        reentry_interval_s: float = 3600.0,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self.engine, self.composer, self.clock, self.chunk = engine_, composer, clock, chunk
        self.interval_s = interval_s
        self.reentry_every = timedelta(seconds=reentry_interval_s)
        self.on_queued = on_queued
        self._reentry_due = 0.0

    async def tick(self) -> None:
        n = await step_all(self.engine, self.composer, self.clock, chunk=self.chunk)
        if n:
            self.on_queued()
            log.info("stepped %d enrolments", n)
        async with self.engine.connect() as conn:  # what is due and not yet stepped, and not yet delivered
            due, undelivered = (await conn.execute(_BACKLOG, {"now": self.clock.now()})).one()
        SCHEDULER_BACKLOG.labels("campaigns").set(due)
        SCHEDULER_BACKLOG.labels("campaigns-delivery").set(undelivered)
        if time.monotonic() >= self._reentry_due:
            self._reentry_due = time.monotonic() + self.reentry_every.total_seconds()
            started = await reenter_all(self.engine, self.composer, self.clock, chunk=self.chunk)
            if started:
                log.info("%d customers re-entered a win-back after the cool-off", started)
