"""The campaigns engine run in-process on a real PostgreSQL, with a clock the test moves.

Batches go through the consumer loop's inbox claim, as in production; the scheduler's step is
called as time passes. Delivery is not run here unless a test runs the dispatcher itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from campaigns.delivery.templates import Templates
from campaigns.domain.machine import stable_fraction
from campaigns.handlers import Handlers
from campaigns.messages import Composer, Links
from campaigns.scheduler import reenter_all, step_all
from cartera_common.clock import SettableClock
from cartera_common.consumer import claim
from cartera_common.events import Envelope
from cartera_common.events.changes import CustomerChanged, CustomerSnapshot
from cartera_common.topics import CUSTOMER_CHANGES, EVENTS, SCORES
from tests.integration.envelopes import envelope, make_envelope

SECRET = "test-unsubscribe-secret"


__all__ = ["CampaignWorld", "changed", "envelope", "treated_id"]


def changed(
    workspace: str, customer: str, at: datetime, *, changes: Sequence[str] = ("status",), **fields: Any
) -> Envelope:
    snapshot = CustomerSnapshot.model_validate(
        {"status": "lapsed", "name": "Ana García", "email": f"{customer}@example.test", "order_count": 3, **fields}
    )
    payload = CustomerChanged(changes=list(changes), customer=snapshot).model_dump(mode="json")  # type: ignore[arg-type]
    return make_envelope(workspace, customer, "customer_changed", at, payload)


def treated_id(campaign_id: str, prefix: str = "c", control: bool = False, share: float = 0.1) -> str:
    """A customer id that the campaign's hash puts in the treatment group (or the control group), and
    in the treatment group of nurture, where a response takes them."""
    for i in range(10_000):
        cid = f"{prefix}-{i}"
        if (stable_fraction(campaign_id, cid) < share) == control and stable_fraction("nurture", cid) >= share:
            return cid
    raise AssertionError("no such id")


class CampaignWorld:
    def __init__(self, engine: AsyncEngine, now: datetime) -> None:
        self.engine = engine
        self.clock = SettableClock(now)
        self.composer = Composer(Templates(), Links("http://campaigns.test", SECRET))
        self.handlers = Handlers(self.clock, self.composer)

    async def consume(self, events: Sequence[Envelope], *, topic: str = EVENTS) -> None:
        handler = {
            EVENTS: self.handlers.apply_events,
            CUSTOMER_CHANGES: self.handlers.apply_changes,
            SCORES: self.handlers.apply_scores,
        }[topic]
        async with self.engine.begin() as conn:
            fresh = await claim(conn, topic, list(events), outcome="applied")
            if fresh:
                await handler(conn, fresh)

    async def lapse(self, workspace: str, customer: str, **fields: Any) -> None:
        await self.consume([changed(workspace, customer, self.clock.now(), **fields)], topic=CUSTOMER_CHANGES)

    async def tick(self) -> int:
        return await step_all(self.engine, self.composer, self.clock, chunk=100)

    async def reenter(self) -> int:
        return await reenter_all(self.engine, self.composer, self.clock, chunk=100)

    async def run_until(self, when: datetime, step: timedelta = timedelta(hours=12)) -> None:
        """Moves the clock to `when` in steps, ticking the scheduler at each, as the running service would."""
        await self.tick()
        while self.clock.now() < when:
            self.clock.set(min(when, self.clock.now() + step))
            await self.tick()

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(text(sql), params)).mappings()]

    async def enrolments(self, workspace: str, customer: str) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT * FROM enrolment WHERE workspace_id = :ws AND customer_id = :cs ORDER BY enrolled_at, ended_at NULLS LAST, enrolment_id",
            ws=workspace,
            cs=customer,
        )

    async def messages(self, workspace: str, customer: str) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT * FROM message WHERE workspace_id = :ws AND customer_id = :cs ORDER BY created_at, step",
            ws=workspace,
            cs=customer,
        )

    async def outcomes(self, workspace: str, customer: str) -> list[dict[str, Any]]:
        import orjson

        rows = await self.rows(
            "SELECT value FROM outbox WHERE workspace_id = :ws AND topic = 'campaign-outcomes' AND key = :key ORDER BY id",
            ws=workspace,
            key=f"{workspace}:{customer}",
        )
        return [orjson.loads(r["value"]) for r in rows]
