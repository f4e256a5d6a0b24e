"""Refits every workspace's models on a timer, so scores follow the portfolio without anyone asking;
workspaces with leads but no orders yet are rescored, so engagement decays in their lead scores."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera_common.clock import Clock
from cartera_common.periodic import Periodic
from scoring.refit import refit
from scoring.rescore import rescore_workspace

log = logging.getLogger(__name__)

_WORKSPACES = text("SELECT DISTINCT workspace_id FROM customer_order ORDER BY 1")
_LEADS_ONLY = text(
    """
    SELECT workspace_id FROM (SELECT DISTINCT workspace_id FROM customer_profile) w
    WHERE NOT EXISTS (SELECT 1 FROM customer_order o WHERE o.workspace_id = w.workspace_id) ORDER BY 1
    """
)


_LOCK = text("SELECT pg_try_advisory_lock(hashtext(:k))")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtext(:k))")
_LAST_FIT = text("SELECT max(fitted_at) FROM model_fit WHERE workspace_id = :ws")


class RefitScheduler(Periodic):
    first_after_s = 60.0

    def __init__(self, engine: AsyncEngine, clock: Clock, interval_s: float) -> None:
        super().__init__()
        self.engine, self.clock, self.interval_s = engine, clock, interval_s

    async def _refit_once(self, ws: str) -> None:
        """Replicas share the timer: one refits a workspace at a time, and none refits what another
        (or `POST /models/refit`) fitted within this interval."""
        key = {"k": f"scoring-refit:{ws}"}
        async with self.engine.connect() as lock:
            if not await lock.scalar(_LOCK, key):
                return  # another replica is refitting it right now
            try:
                now = self.clock.now()
                last = await lock.scalar(_LAST_FIT, {"ws": ws})
                await lock.commit()  # hold no snapshot open through a long fit; the lock is the session's
                if last is not None and now - last < timedelta(seconds=0.9 * self.interval_s):
                    return
                try:
                    done = await refit(self.engine, ws, as_of=now, now=now)
                except ValueError as exc:  # nothing to fit yet (only future-dated orders): the others go on
                    log.warning("models of %s not refitted: %s", ws, exc, extra={"workspace_id": ws})
                    return
                log.info(
                    "models of %s refitted on %d customers (converged: %s), %d scores published",
                    ws, done.customers, done.converged, done.published, extra={"workspace_id": ws},
                )  # fmt: skip
            finally:
                await lock.execute(_UNLOCK, key)
                await lock.commit()

    async def tick(self) -> None:
        async with self.engine.connect() as conn:
            names = [r[0] for r in await conn.execute(_WORKSPACES)]
            leads_only = [r[0] for r in await conn.execute(_LEADS_ONLY)]
        for ws in names:
            if self.stopping:
                return
            await self._refit_once(ws)
        for ws in leads_only:
            if self.stopping:
                return
            async with self.engine.begin() as conn:
                published = await rescore_workspace(conn, ws, now=self.clock.now())
            log.info("leads of %s rescored, %d scores published", ws, published, extra={"workspace_id": ws})
