"""A segmenter run in-process on a real PostgreSQL, with a clock the test moves.

Consumed batches go through the same inbox claim as the consumer loop, so replays behave as in
production; no service process runs on this database, so nothing else moves its clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera_common.clock import SettableClock
from cartera_common.consumer import claim
from cartera_common.events import Envelope
from cartera_common.topics import EVENTS
from segmenter.handlers import Handlers
from segmenter.sweep import sweep_once
from tests.integration.envelopes import envelope

__all__ = ["World", "envelope", "orders"]


class World:
    def __init__(self, engine: AsyncEngine, now: datetime) -> None:
        self.engine = engine
        self.clock = SettableClock(now)
        self.handlers = Handlers(self.clock)

    async def consume(self, events: Sequence[Envelope], *, topic: str = EVENTS, batch: int = 500) -> None:
        handler = {
            EVENTS: self.handlers.apply_events,
            "scores": self.handlers.apply_scores,
            "campaign-outcomes": self.handlers.apply_outcomes,
        }[topic]
        for start in range(0, len(events), batch):
            async with self.engine.begin() as conn:
                fresh = await claim(conn, topic, list(events[start : start + batch]), outcome="applied")
                if fresh:
                    await handler(conn, fresh)

    async def advance_to(self, when: datetime) -> int:
        self.clock.set(when)
        return await sweep_once(self.engine, now=when, chunk=100)

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(text(sql), params)).mappings()]

    async def statuses(self, workspace: str) -> dict[str, str]:
        found = await self.rows("SELECT customer_id, status FROM customer WHERE workspace_id = :ws", ws=workspace)
        return {r["customer_id"]: r["status"] for r in found}


def orders(workspace: str, customer: str, days: Iterable[datetime], amount: float = 20.0) -> list[Envelope]:
    return [
        envelope(workspace, customer, "order_completed", at, order_id=f"{customer}-{i}", amount=amount)
        for i, at in enumerate(days)
    ]
