"""Every statement that locks customers locks them in the one order (`segmenter.locks`), whatever
plan PostgreSQL picks, so consumer lanes, the sweep and the portfolio run wait for each other
instead of deadlocking."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cartera.stack import Servers
from cartera_common.clock import SettableClock
from cartera_common.events.changes import MESSAGE_SENT
from segmenter.changes import publish_changes
from segmenter.domain.policy import DEFAULT_POLICY
from segmenter.handlers import Handlers
from segmenter.locks import lock_customers
from segmenter.policy_store import save_policy
from segmenter.reevaluate import reevaluate
from tests.integration.databases import migrated_engine
from tests.integration.envelopes import envelope

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
Locker = Callable[[AsyncConnection, list[tuple[str, str]]], Awaitable[object]]

HANDLERS = Handlers(SettableClock(NOW))

LOCKERS: dict[str, Locker] = {
    # Batches that lock in two steps: `b`'s profile or unsubscribe first, then every customer seen.
    "apply_events": lambda conn, keys: HANDLERS.apply_events(
        conn,
        [
            envelope(*keys[1], "profile_updated", NOW, name="B"),
            envelope(*keys[0], "order_completed", NOW, order_id="o-1", amount="5", currency="EUR"),
        ],
    ),
    "apply_outcomes": lambda conn, keys: HANDLERS.apply_outcomes(
        conn,
        [
            envelope(*keys[1], "unsubscribed", NOW, channel="email"),
            envelope(*keys[0], MESSAGE_SENT, NOW, channel="email"),
        ],
    ),
    "lock_customers": lock_customers,
    "publish_changes": lambda conn, keys: publish_changes(conn, keys, now=NOW),
    "reevaluate": lambda conn, keys: reevaluate(conn, keys, now=NOW),
    # A new policy marks every customer of the workspace due: all of them, so here `a` and `b`.
    "save_policy": lambda conn, keys: save_policy(conn, keys[0][0], DEFAULT_POLICY, now=NOW, by="test"),
}


@pytest.fixture(scope="module")
async def engine(servers: Servers) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(servers, "segmenter") as engine:
        yield engine


async def backend_pid(conn: AsyncConnection) -> int:
    pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    await conn.commit()
    return int(pid)


async def waiting_for_a_lock(engine: AsyncEngine, pid: int) -> None:
    query = text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid")
    for _ in range(500):
        async with engine.connect() as conn:
            if (await conn.execute(query, {"pid": pid})).scalar():
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the locker never waited for the held customer")


@pytest.mark.parametrize("name", sorted(LOCKERS))
async def test_customers_are_locked_in_key_order_whatever_the_plan(engine: AsyncEngine, name: str) -> None:
    ws = "t-" + uuid.uuid4().hex[:10]
    async with engine.begin() as conn:  # stored `b` before `a`: a scan of the table meets them in that order
        await conn.execute(
            text("INSERT INTO customer (workspace_id, customer_id, first_seen_at, last_event_at) "
                 "SELECT :ws, unnest(CAST(:ids AS text[])), :at, :at"),
            {"ws": ws, "ids": ["b", "a"], "at": NOW},
        )  # fmt: skip
    lock_one = text("SELECT 1 FROM customer WHERE workspace_id = :ws AND customer_id = :cs FOR UPDATE")
    async with engine.connect() as holder, engine.connect() as locker:
        pid = await backend_pid(locker)
        await holder.execute(lock_one, {"ws": ws, "cs": "a"})  # a transaction that locks in the one order, `a` first

        async def lock_both() -> None:
            async with locker.begin():
                # A plan that meets rows in table order: a hash join over a scan of `customer`.
                for setting in ("enable_nestloop", "enable_mergejoin", "enable_indexscan", "enable_bitmapscan"):
                    await locker.execute(text(f"SET LOCAL {setting} = off"))
                await LOCKERS[name](locker, [(ws, "a"), (ws, "b")])

        both = asyncio.create_task(lock_both())
        await waiting_for_a_lock(engine, pid)
        # In the one order the locker holds nothing while it waits for `a`, so `b` is free;
        # out of order it would hold `b`, and one of the two would die of a deadlock here.
        await holder.execute(lock_one, {"ws": ws, "cs": "b"})
        await holder.commit()
        await asyncio.wait_for(both, timeout=30)
