"""Refits every workspace's models on a timer, so scores follow the portfolio without anyone asking."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera_common.clock import Clock
from cartera_common.periodic import Periodic
from scoring.refit import refit

log = logging.getLogger(__name__)

_WORKSPACES = text("SELECT DISTINCT workspace_id FROM customer_order ORDER BY 1")


class RefitScheduler(Periodic):
    first_after_s = 60.0

    def __init__(self, engine: AsyncEngine, clock: Clock, interval_s: float) -> None:
        super().__init__()
        self.engine, self.clock, self.interval_s = engine, clock, interval_s

    async def tick(self) -> None:
        async with self.engine.connect() as conn:
            names = [r[0] for r in await conn.execute(_WORKSPACES)]
        for ws in names:
            if self.stopping:
                return
            now = self.clock.now()
            done = await refit(self.engine, ws, as_of=now, now=now)
            log.info(
                "models of %s refitted on %d customers (converged: %s), %d scores published",
                ws, done.customers, done.converged, done.published, extra={"workspace_id": ws},
            )  # fmt: skip
