"""Refits every workspace's models on a timer, so scores follow the portfolio without anyone asking;
workspaces with leads but no orders yet are rescored, so engagement decays in their lead scores."""

from __future__ import annotations

import logging

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


class RefitScheduler(Periodic):
    first_after_s = 60.0

    def __init__(self, engine: AsyncEngine, clock: Clock, interval_s: float) -> None:
        super().__init__()
        self.engine, self.clock, self.interval_s = engine, clock, interval_s

    async def tick(self) -> None:
        async with self.engine.connect() as conn:
            names = [r[0] for r in await conn.execute(_WORKSPACES)]
            leads_only = [r[0] for r in await conn.execute(_LEADS_ONLY)]
        for ws in names:
            if self.stopping:
                return
            now = self.clock.now()
            try:
                done = await refit(self.engine, ws, as_of=now, now=now)
            except ValueError as exc:  # nothing to fit yet (only future-dated orders): the others go on
                log.warning("models of %s not refitted: %s", ws, exc, extra={"workspace_id": ws})
                continue
            log.info(
                "models of %s refitted on %d customers (converged: %s), %d scores published",
                ws, done.customers, done.converged, done.published, extra={"workspace_id": ws},
            )  # fmt: skip
        for ws in leads_only:
            if self.stopping:
                return
            async with self.engine.begin() as conn:
                published = await rescore_workspace(conn, ws, now=self.clock.now())
            log.info("leads of %s rescored, %d scores published", ws, published, extra={"workspace_id": ws})
