"""Scoring keeps its own copy of the orders (it never reads the segmenter's), idempotent by order id."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera.stack import Servers
from cartera_common.clock import SettableClock
from cartera_common.consumer import claim
from cartera_common.events import Envelope
from scoring.handlers import Handlers
from scoring.tables import customer_order
from tests.integration.databases import migrated_engine

T0 = datetime(2026, 3, 1, tzinfo=UTC)

HANDLERS = Handlers(SettableClock(T0 + timedelta(days=1)))


@pytest.fixture(scope="module")
async def engine(servers: Servers) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(servers, "scoring") as engine:
        yield engine


def event(ws: str, kind: str, minutes: int, **payload: Any) -> Envelope:
    at = T0 + timedelta(minutes=minutes)
    return Envelope(event_id=str(uuid.uuid4()), type=kind, workspace_id=ws, customer_id="c",
                    occurred_at=at, received_at=at, payload=payload)  # fmt: skip


async def consume(engine: AsyncEngine, events: list[Envelope]) -> None:
    async with engine.begin() as conn:
        fresh = await claim(conn, "events", events, outcome="applied")
        await HANDLERS.apply_events(conn, fresh)


async def orders(engine: AsyncEngine, ws: str) -> dict[str, tuple[Decimal, Decimal, bool]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(customer_order).where(customer_order.c.workspace_id == ws))).mappings()
        return {r["order_id"]: (r["amount"], r["refunded"], r["cancelled"]) for r in rows}


async def test_orders_refunds_and_cancellations_are_kept_once_however_often_they_arrive(engine: AsyncEngine) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]
    batch = [
        event(ws, "order_completed", 0, order_id="a", amount="40", currency="EUR"),
        event(ws, "order_refunded", 5, order_id="a", amount="15"),
        event(ws, "order_completed", 1, order_id="b", amount="10"),
        event(ws, "order_cancelled", 2, order_id="b"),
        event(ws, "profile_updated", 3, name="Ana"),
    ]
    await consume(engine, batch)
    await consume(engine, batch)  # redelivered: the inbox makes it a no-op
    await consume(engine, [event(ws, "order_refunded", 9, order_id="a", amount="5")])
    assert await orders(engine, ws) == {
        "a": (Decimal(40), Decimal(20), False),
        "b": (Decimal(10), Decimal(0), True),
    }
