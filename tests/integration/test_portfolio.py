"""The portfolio run on a real PostgreSQL, held to the pure rules customer by customer."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera.stack import Servers
from cartera_common.db import create_engine
from cartera_common.events.changes import CustomerChanged
from cartera_common.settings import DatabaseSettings
from segmenter.domain.classification import Classification, Facts, Order, Rfm, classify, trailing_revenue
from segmenter.portfolio import _classify_and_record, recompute_portfolio, workspaces
from segmenter.tables import customer, customer_order, plumbing, portfolio_run

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
YEAR = timedelta(days=365)
Orders = dict[str, list[Order]]


@pytest.fixture(scope="module")
async def engine(servers: Servers) -> AsyncIterator[AsyncEngine]:
    # A database no service runs on: the segmenter's own timer would classify these workspaces by the wall clock.
    url = await asyncio.to_thread(servers.migrated_database)
    engine = create_engine(DatabaseSettings(database_url=url), schema="segmenter")
    yield engine
    await engine.dispose()


@pytest.fixture
def ws() -> str:
    return "t-" + uuid.uuid4().hex[:10]


def portfolio(seed: int, customers: int = 300) -> Orders:
    """Prospects, one-off and regular buyers, refunds, cancellations, orders on the window's edges, and
    many equal amounts, so ties fall on the tier and Pareto boundaries; ids that sort differently by collation."""
    rng = random.Random(seed)
    out: Orders = {}
    for i in range(customers):
        cid = f"{rng.choice(['a', 'B', 'z', 'É', 'ñ', '_'])}-{i}"
        if rng.random() < 0.1:
            out[cid] = []
            continue
        out[cid] = [
            Order(
                amount=Decimal(rng.choice(["10", "20", "20", "20", "35.50", "120", "999.99"])),
                occurred_at=NOW - rng.choice([YEAR, YEAR - timedelta(microseconds=1), timedelta(0)])
                if rng.random() < 0.05
                else NOW - timedelta(days=rng.randint(0, 700), minutes=rng.randint(0, 1439)),
                refunded=Decimal("5") if rng.random() < 0.1 else Decimal(0),
                completed=rng.random() > 0.03,
                cancelled=rng.random() < 0.03,
            )
            for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 5, 8]))
        ]
    return out


def facts(orders: Orders, now: datetime) -> dict[str, Facts]:
    out = {}
    for cid, mine in orders.items():
        done = [o for o in mine if o.completed and not o.cancelled]
        out[cid] = Facts(
            revenue_12m=trailing_revenue(mine, now=now),
            order_count=len(done),
            last_order_at=max((o.occurred_at for o in done), default=None),
            revenue=sum((o.amount - o.refunded for o in done), Decimal(0)),
        )
    return out


async def seed(engine: AsyncEngine, ws: str, orders: Orders) -> None:
    """The customer's order totals are the handlers' job; here they are set to match the orders."""
    rows = [
        {
            "workspace_id": ws,
            "customer_id": cid,
            "order_id": f"o-{n}",
            "amount": o.amount,
            "occurred_at": o.occurred_at,
            "refunded": o.refunded,
            "completed": o.completed,
            "cancelled": o.cancelled,
        }
        for cid, mine in orders.items()
        for n, o in enumerate(mine)
    ]
    async with engine.begin() as conn:
        await conn.execute(customer.insert(), [_customer_row(ws, cid, f) for cid, f in facts(orders, NOW).items()])
        if rows:
            await conn.execute(customer_order.insert(), rows)


def _customer_row(ws: str, cid: str, f: Facts) -> dict[str, Any]:
    return {
        "workspace_id": ws,
        "customer_id": cid,
        "first_seen_at": NOW - 2 * YEAR,
        "last_event_at": NOW,
        "status": "active" if f.buyer else "prospect",
        "order_count": f.order_count,
        "revenue": f.revenue,
        "last_order_at": f.last_order_at,
    }


async def add_order(engine: AsyncEngine, ws: str, orders: Orders, cid: str, order: Order) -> None:
    orders[cid].append(order)
    f = facts({cid: orders[cid]}, NOW)[cid]
    async with engine.begin() as conn:
        await conn.execute(
            customer_order.insert(),
            {"workspace_id": ws, "customer_id": cid, "order_id": "big", "amount": order.amount,
             "occurred_at": order.occurred_at, "completed": True},
        )  # fmt: skip
        await conn.execute(
            customer.update()
            .where(customer.c.workspace_id == ws, customer.c.customer_id == cid)
            .values(order_count=f.order_count, revenue=f.revenue, last_order_at=f.last_order_at)
        )


async def stored(engine: AsyncEngine, ws: str) -> dict[str, tuple[Decimal, Classification]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(customer).where(customer.c.workspace_id == ws))).mappings().all()
    return {
        r["customer_id"]: (
            r["revenue_12m"],
            Classification(
                r["tier"], None if r["rfm_r"] is None else Rfm(r["rfm_r"], r["rfm_f"], r["rfm_m"]), r["pareto"]
            ),
        )
        for r in rows
    }


def expected(orders: Orders, now: datetime, **shares: Any) -> dict[str, tuple[Decimal, Classification]]:
    known = facts(orders, now)
    return {cid: (known[cid].revenue_12m, c) for cid, c in classify(known, **shares).items()}


async def published(engine: AsyncEngine, ws: str) -> list[dict[str, Any]]:
    outbox = plumbing.outbox
    async with engine.connect() as conn:
        values = await conn.scalars(select(outbox.c.value).where(outbox.c.workspace_id == ws).order_by(outbox.c.id))
        return [orjson.loads(v) for v in values]


async def test_every_customer_is_classified_as_the_rules_say(engine: AsyncEngine, ws: str) -> None:
    orders = portfolio(seed=1)
    await seed(engine, ws, orders)
    run = await recompute_portfolio(engine, ws, now=NOW)
    want = expected(orders, NOW)
    assert await stored(engine, ws) == want
    untouched = (Decimal(0), Classification(None, None, False))
    assert (run.customers, run.changed) == (len(orders), sum(1 for v in want.values() if v != untouched))
    async with engine.connect() as conn:
        record = (await conn.execute(select(portfolio_run).where(portfolio_run.c.workspace_id == ws))).mappings().one()
        stamped = await conn.scalar(
            select(func.count()).where(customer.c.workspace_id == ws, customer.c.classified_at == NOW)
        )
    assert stamped == run.changed
    assert (record["as_of"], record["customers"], record["changed"]) == (NOW, len(orders), run.changed)
    assert record["stats"]["pareto"] == sum(1 for _, c in want.values() if c.pareto)
    assert Decimal(record["stats"]["revenue_12m"]) == sum(r for r, _ in want.values() if r > 0)


async def test_tier_and_pareto_shares_are_parameters(engine: AsyncEngine, ws: str) -> None:
    orders = portfolio(seed=2)
    await seed(engine, ws, orders)
    await recompute_portfolio(engine, ws, now=NOW, tier_shares=(0.1, 0.2, 0.3), pareto_share=0.5)
    assert await stored(engine, ws) == expected(orders, NOW, tier_shares=(0.1, 0.2, 0.3), pareto_share=0.5)


async def test_time_alone_moves_revenue_out_of_the_window(engine: AsyncEngine, ws: str) -> None:
    orders = portfolio(seed=3)
    await seed(engine, ws, orders)
    await recompute_portfolio(engine, ws, now=NOW)
    later = NOW + timedelta(days=120)
    await recompute_portfolio(engine, ws, now=later)
    assert await stored(engine, ws) == expected(orders, later)


async def test_a_rerun_over_an_unchanged_portfolio_writes_and_publishes_nothing(engine: AsyncEngine, ws: str) -> None:
    await seed(engine, ws, portfolio(seed=4))
    first = await recompute_portfolio(engine, ws, now=NOW)
    before = await published(engine, ws)
    again = await recompute_portfolio(engine, ws, now=NOW)
    assert first.moved > 0 and first.published > 0
    assert (again.changed, again.moved, again.published) == (0, 0, 0)
    assert await published(engine, ws) == before


async def test_a_big_order_moves_tiers_and_tells_campaigns_about_exactly_those_customers(
    engine: AsyncEngine, ws: str
) -> None:
    orders = portfolio(seed=5)
    await seed(engine, ws, orders)
    await recompute_portfolio(engine, ws, now=NOW)
    before = await stored(engine, ws)
    sent = len(await published(engine, ws))
    smallest = min((c for c in orders if before[c][1].tier == "low"), key=lambda c: before[c][0])
    await add_order(engine, ws, orders, smallest, Order(Decimal(50_000), NOW - timedelta(days=1)))

    run = await recompute_portfolio(engine, ws, now=NOW)
    after = await stored(engine, ws)
    assert after == expected(orders, NOW)
    assert after[smallest][1].tier == "very_high"
    moved = {c for c in after if (after[c][1].tier, after[c][1].pareto) != (before[c][1].tier, before[c][1].pareto)}
    assert len(moved) > 1 and run.moved == len(moved)
    messages = (await published(engine, ws))[sent:]
    assert {m["customer_id"] for m in messages} == moved
    for m in messages:
        change = CustomerChanged.model_validate(m["payload"])
        was, now = before[m["customer_id"]][1], after[m["customer_id"]][1]
        assert (change.customer.tier, change.customer.pareto) == (now.tier, now.pareto)
        assert ("tier" in change.changes) == (was.tier != now.tier)
        assert ("pareto" in change.changes) == (was.pareto != now.pareto)


async def test_several_workspaces_in_one_transaction_stay_apart(engine: AsyncEngine) -> None:
    pair = {"t-" + uuid.uuid4().hex[:10]: portfolio(seed=s, customers=40) for s in (6, 7)}
    for name, orders in pair.items():
        await seed(engine, name, orders)
    async with engine.begin() as conn:
        assert set(pair) <= set(await workspaces(conn))
        for name in pair:
            await recompute_portfolio(conn, name, now=NOW)
        await conn.execute(text("SELECT 1"))  # the caller's transaction is still usable
    for name, orders in pair.items():
        assert await stored(engine, name) == expected(orders, NOW)


async def test_a_workspace_without_revenue_has_no_tiers_and_nobody_in_pareto(engine: AsyncEngine, ws: str) -> None:
    lapsed = {"old": [Order(Decimal(100), NOW - 2 * YEAR)], "prospect": []}
    await seed(engine, ws, lapsed)
    run = await recompute_portfolio(engine, ws, now=NOW)
    assert await stored(engine, ws) == expected(lapsed, NOW)
    assert {c.tier for _, c in (await stored(engine, ws)).values()} == {None}
    assert (run.customers, run.moved, run.published) == (2, 0, 0)
    empty = await recompute_portfolio(engine, "t-" + uuid.uuid4().hex[:10], now=NOW)
    assert (empty.customers, empty.changed) == (0, 0)


async def test_a_run_that_stopped_while_publishing_is_published_by_the_next(engine: AsyncEngine, ws: str) -> None:
    await seed(engine, ws, portfolio(seed=8))
    async with engine.begin() as conn:  # the classification commits; the process dies before publishing
        run, moved = await _classify_and_record(conn, ws, NOW, (0.05, 0.15, 0.30), 0.8, publish=False)
    assert moved and await published(engine, ws) == []

    later = await recompute_portfolio(engine, ws, now=NOW)
    assert later.moved == 0  # nothing new to classify ...
    told = [m["customer_id"] for m in await published(engine, ws)]
    assert set(moved) <= set(told) and len(told) == len(set(told))  # ... but the debt is paid, once each
    async with engine.connect() as conn:
        unpublished = await conn.scalar(
            select(func.count()).where(portfolio_run.c.workspace_id == ws, portfolio_run.c.published_at.is_(None))
        )
    assert unpublished == 0
    await recompute_portfolio(engine, ws, now=NOW)
    assert len(await published(engine, ws)) == len(told)


async def _written(engine: AsyncEngine, ws: str, cid: str) -> None:
    """Waits until the run's write of `cid` is committed (visible to another session)."""
    for _ in range(400):
        async with engine.connect() as conn:
            at = await conn.scalar(
                select(customer.c.classified_at).where(customer.c.workspace_id == ws, customer.c.customer_id == cid)
            )
        if at == NOW:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{cid} was never written")


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("segmenter.portfolio.WRITE_CHUNK", 16)


@asynccontextmanager
async def run_held_at_its_last_buyer(
    engine: AsyncEngine, ws: str, orders: Orders
) -> AsyncIterator[tuple[asyncio.Task[Any], str]]:
    """A run started while another session holds the row lock of the buyer it writes last; yields
    once the run's write of the first buyer is committed (the run and that buyer), and lets go after."""
    buyers = sorted((cid for cid, (revenue, _) in expected(orders, NOW).items() if revenue > 0), key=str.encode)
    blocker = await engine.connect()
    try:
        await blocker.execute(
            text("SELECT 1 FROM customer WHERE workspace_id = :ws AND customer_id = :c FOR UPDATE"),
            {"ws": ws, "c": buyers[-1]},
        )
        run = asyncio.create_task(recompute_portfolio(engine, ws, now=NOW))
        await _written(engine, ws, buyers[0])
        yield run, buyers[0]
    finally:
        await blocker.rollback()
        await blocker.close()


@pytest.mark.usefixtures("small_chunks")
async def test_a_run_writes_in_chunks_so_a_consumer_waits_for_one_chunk_not_the_whole_portfolio(
    engine: AsyncEngine, ws: str
) -> None:
    orders = portfolio(seed=9)
    await seed(engine, ws, orders)
    async with run_held_at_its_last_buyer(engine, ws, orders) as (run, first):
        async with engine.begin() as consumer:  # what the event handlers do: lock the customer, now
            locked = await consumer.execute(
                text("SELECT 1 FROM customer WHERE workspace_id = :ws AND customer_id = :c FOR UPDATE NOWAIT"),
                {"ws": ws, "c": first},
            )
            assert locked.scalar() == 1
        assert not run.done()  # still coming back for the customer the blocker holds
    done = await run
    assert await stored(engine, ws) == expected(orders, NOW)
    assert done.changed == sum(1 for v in expected(orders, NOW).values() if v[0] > 0 or v[1].rfm is not None)


@pytest.mark.usefixtures("small_chunks")
async def test_a_run_that_died_half_way_through_its_chunks_is_finished_and_published_by_the_next(
    engine: AsyncEngine, ws: str
) -> None:
    orders = portfolio(seed=10)
    await seed(engine, ws, orders)
    async with run_held_at_its_last_buyer(engine, ws, orders) as (run, _):
        # The run's session (the one holding the workspace's run lock) dies before it can write the
        # customer the blocker holds, as if the database connection were lost.
        async with engine.connect() as admin:
            killed = await admin.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
        assert killed == 1
        with pytest.raises(Exception):  # noqa: B017 - whichever error the lost connection surfaces as
            await run
    assert await published(engine, ws) == []  # chunks were written, nothing was told yet

    later = await recompute_portfolio(engine, ws, now=NOW)
    assert await stored(engine, ws) == expected(orders, NOW)
    told = [m["customer_id"] for m in await published(engine, ws)]
    moved = {cid for cid, (_, c) in expected(orders, NOW).items() if c.tier is not None or c.pareto}
    assert moved <= set(told) and len(told) == len(set(told))  # each once, from the dead run or this one
    assert later.moved < len(moved)  # the dead run's chunks were not redone
