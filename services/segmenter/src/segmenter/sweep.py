"""Time moves customers too: re-evaluates those whose due time has come, in chunks, via the due index."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera_common.clock import Clock
from cartera_common.errors import is_transient
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


@dataclass
class Sweeper:
    """Runs the sweep at start (for what came due while the service was down) and then every `interval_s`."""

    engine: AsyncEngine
    clock: Clock
    interval_s: float = 1.0
    chunk: int = 5_000
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                n = await sweep_once(self.engine, now=self.clock.now(), chunk=self.chunk)
                if n:
                    log.info("sweep re-evaluated customers", extra={"customers": n})
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("sweep failed")
                else:
                    log.warning("sweep waiting for the database: %s", type(exc).__name__)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval_s)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping.set()
