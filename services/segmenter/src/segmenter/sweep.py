"""Time moves customers too: re-evaluates those whose due time has come, in chunks, via the due index."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera_common.clock import Clock
from cartera_common.periodic import Periodic
from segmenter.reevaluate import reevaluate

log = logging.getLogger(__name__)

# SKIP LOCKED: replicas sweep side by side, and a consumer holding a customer is never waited on.
_DUE = text(
    """
    SELECT workspace_id, customer_id FROM customer
    WHERE due_at <= :now ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED
    """
)


async def sweep_once(engine: AsyncEngine, *, now: datetime, chunk: int = 5_000) -> int:
    """Re-evaluates everyone due at `now`; returns how many customers it looked at."""
    total = 0
    while True:
        async with engine.begin() as conn:
            keys = [(r[0], r[1]) for r in await conn.execute(_DUE, {"now": now, "limit": chunk})]
            if keys:
                await reevaluate(conn, keys, now=now)
        total += len(keys)
        if len(keys) < chunk:
            return total


class Sweeper(Periodic):
    """Sweeps at start (for what came due while the service was down) and then every `interval_s`."""

    def __init__(self, engine: AsyncEngine, clock: Clock, interval_s: float = 1.0, chunk: int = 5_000) -> None:
        super().__init__()
        self.engine, self.clock, self.interval_s, self.chunk = engine, clock, interval_s, chunk

    async def tick(self) -> None:
        n = await sweep_once(self.engine, now=self.clock.now(), chunk=self.chunk)
        if n:
            log.info("sweep re-evaluated %d customers", n)
