"""Reclassifies every workspace's portfolio on a timer: tiers, RFM and Pareto are relative to the
whole portfolio and to a trailing window, so time changes them even without events."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from cartera_common.clock import Clock
from cartera_common.periodic import Periodic
from segmenter.policy_store import current_policies
from segmenter.portfolio import PortfolioRun, recompute_portfolio, workspaces

log = logging.getLogger(__name__)


async def classify(engine: AsyncEngine, workspace_id: str, *, now: datetime) -> PortfolioRun:
    """One workspace under its own policy's tier shares and Pareto share."""
    async with engine.connect() as conn:
        policy = (await current_policies(conn, [workspace_id]))[workspace_id].policy
    t = policy.tiers
    return await recompute_portfolio(
        engine, workspace_id, now=now, tier_shares=(t.very_high, t.high, t.medium), pareto_share=policy.pareto_share
    )


class PortfolioScheduler(Periodic):
    """First run shortly after start, then every `interval_s`; one workspace at a time."""

    def __init__(
        self, engine: AsyncEngine, clock: Clock, interval_s: float = 900.0, first_after_s: float = 10.0
    ) -> None:
        super().__init__()
        self.engine, self.clock, self.interval_s, self.first_after_s = engine, clock, interval_s, first_after_s

    async def tick(self) -> None:
        async with self.engine.connect() as conn:
            names = await workspaces(conn)
        for ws in names:
            if self.stopping:
                return
            done = await classify(self.engine, ws, now=self.clock.now())
            log.info(
                "portfolio of %s classified: %d customers, %d changed tier or Pareto, %d ms",
                ws, done.customers, done.moved, done.duration_ms, extra={"workspace_id": ws},
            )  # fmt: skip
