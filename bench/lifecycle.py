"""The segmenter's lifecycle at portfolio scale: the lapse sweep over a million customers when 1 % are
due, and GET /customers/{id} under concurrent load. Data is generated inside PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from bench.latency import paced
from bench.rawhttp import RawPool
from bench.report import Figure, percentile, summary_ms
from cartera.stack import Stack
from cartera_common.settings import asyncpg_url, libpq_url
from segmenter.main import tune_gc
from segmenter.sweep import sweep_once

WORKSPACE = "default"  # the workspace whose keys the stack holds

# Every customer ordered monthly ten times. The due 1 % stopped 200 days ago (past 3 x 30 days, so
# they lapse); the rest ordered within the last month and are due months from now.
_CUSTOMERS = """
INSERT INTO segmenter.customer (workspace_id, customer_id, first_seen_at, last_event_at, order_count, revenue,
    first_order_at, last_order_at, recent_orders_at, status, status_since, due_at, name, email, industry)
SELECT $1, 'c' || g, o.first_at, l.last_at, 10, 10 * (20 + g % 80), o.first_at, l.last_at, o.recent,
       'active', o.first_at + interval '90 days',
       CASE WHEN g % 100 = 0 THEN $2::timestamptz - interval '1 hour' ELSE l.last_at + interval '90 days' END,
       'Customer ' || g, 'c' || g || '@example.com', (ARRAY['47.76', '56.10', '10.71'])[1 + g % 3]
FROM generate_series(1, $3) AS g,
LATERAL (SELECT $2::timestamptz - make_interval(days => CASE WHEN g % 100 = 0 THEN 200 ELSE g % 28 END) AS last_at) AS l,
LATERAL (SELECT l.last_at - interval '270 days' AS first_at,
                ARRAY(SELECT l.last_at - make_interval(days => 30 * i) FROM generate_series(0, 9) AS i) AS recent) AS o
"""

_TIMELINE = """
INSERT INTO segmenter.timeline (workspace_id, customer_id, occurred_at, event_id, type, summary)
SELECT $1, 'c' || g, $2::timestamptz - make_interval(days => 30 * i), g || '-' || i, 'order_completed',
       jsonb_build_object('order_id', 'o' || i, 'amount', 20 + g % 80)
FROM generate_series(1, $3) AS g, generate_series(0, $4 - 1) AS i
"""


async def generate(database_url: str, customers: int, timeline_per_customer: int) -> None:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        started = time.perf_counter()
        await conn.execute(_CUSTOMERS, WORKSPACE, _now(), customers)
        await conn.execute(_TIMELINE, WORKSPACE, _now(), customers, timeline_per_customer)
        await conn.execute("VACUUM ANALYZE segmenter.customer")
        await conn.execute("VACUUM ANALYZE segmenter.timeline")
        took = time.perf_counter() - started
        print(f"  generated {customers:,} customers and {customers * timeline_per_customer:,} timeline rows "
              f"in {took:.0f} s", flush=True)  # fmt: skip
    finally:
        await conn.close()


def _now() -> datetime:
    return datetime.now(UTC)


async def sweep_phase(database_url: str) -> tuple[int, float, float]:
    """Times one sweep of everything due now, and the floor beside it: one UPDATE touching the same rows."""
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        await conn.execute("CREATE TEMP TABLE due AS SELECT workspace_id, customer_id FROM segmenter.customer "
                           "WHERE due_at <= now()")  # fmt: skip
        started = time.perf_counter()
        await conn.execute(
            "UPDATE segmenter.customer c SET updated_at = now() FROM due "
            "WHERE c.workspace_id = due.workspace_id AND c.customer_id = due.customer_id"
        )
        baseline = time.perf_counter() - started
    finally:
        await conn.close()
    engine = create_async_engine(
        asyncpg_url(database_url), connect_args={"server_settings": {"search_path": "segmenter"}}
    )
    tune_gc()  # the segmenter process's collector settings, under which its sweeper runs
    try:
        started = time.perf_counter()
        swept = await sweep_once(engine, now=_now(), chunk=5_000)
        took = time.perf_counter() - started
    finally:
        await engine.dispose()
    return swept, took, baseline


async def read_phase(
    url: str, key: str, customers: int, *, seconds: float, rate: float
) -> tuple[list[float], list[float]]:
    """Random customers at a steady `rate` (open loop: a slow answer does not slow the next request);
    /healthz at the same rate is the floor of HTTP and framework on this machine."""
    rng = random.Random(1)
    pool = RawPool(url, {"Authorization": f"Bearer {key}"})
    try:
        for _ in range(100):  # the key reaches the service over the access topic
            if (await pool.get("/customers/c1"))[0] == 200:
                break
            await asyncio.sleep(0.2)

        async def measure(path: str | None) -> list[float]:
            out: list[float] = []

            async def fire(i: int) -> None:
                target = path or f"/customers/c{rng.randint(1, customers)}"
                started = time.perf_counter()
                status, body = await pool.get(target)
                out.append(time.perf_counter() - started)
                if status != 200:
                    raise RuntimeError(f"{target}: {status} {body[:200]!r}")

            await paced(rate, 1, 1, fire)  # warm the pools and caches
            out.clear()
            await paced(rate, seconds, 1, fire)
            return out

        return await measure(None), await measure("/healthz")
    finally:
        await pool.close()


async def run_lifecycle(stack: Stack, *, customers: int, seconds: float, rate: float) -> list[Figure]:
    print(f"lifecycle: {customers:,} customers, 1 % due …", flush=True)
    await generate(stack.database_url, customers, timeline_per_customer=5)
    swept, took, baseline = await sweep_phase(stack.database_url)
    print(f"  sweep: {swept:,} due customers re-evaluated in {took:.2f} s; "
          f"one UPDATE of the same rows {baseline:.2f} s", flush=True)  # fmt: skip
    for name in ("ingest", "segmenter"):  # ingest announces the keys the segmenter checks
        if name not in stack.services:
            # The read figure is the read path's: a first classification of a million customers
            # (minutes of CPU, measured in the portfolio phase) must not run beside it.
            stack.start(name, SEGMENTER_PORTFOLIO_FIRST_AFTER_S="3600")
    reads, health = await read_phase(
        stack.services["segmenter"].url, stack.keys["read"], customers, seconds=seconds, rate=rate
    )
    print(f"  GET /customers/{{id}} at {rate:,.0f} req/s: {summary_ms(reads)}")
    print(f"  GET /healthz, same load: {summary_ms(health)}")
    r99, h99 = percentile(reads, 99) * 1000, percentile(health, 99) * 1000
    return [
        Figure(f"lapse sweep, {customers:,} customers, 1 % due", took * 1000, "ms", baseline * 1000,
               "UPDATE same rows", "< 2,000 ms"),
        Figure(f"GET /customers/{{id}} p99 at {rate:,.0f} req/s", r99, "ms", h99, "/healthz p99", "< 20 ms"),
    ]  # fmt: skip
