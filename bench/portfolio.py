"""The portfolio run at scale: tiers, RFM and Pareto for a million customers and ten million orders.

Data is generated inside PostgreSQL (no services needed). Orders go in customer by customer,
which favours the baseline's hash aggregation; customers go in shuffled, so the run's updates in
`customer_id` order land on scattered pages, as they do when ids arrive in no particular order.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.report import Figure
from cartera_common.db import create_engine
from cartera_common.settings import DatabaseSettings, libpq_url
from segmenter.portfolio import PortfolioRun, recompute_portfolio

WORKSPACE = "bench-portfolio"
NOW = datetime(2026, 12, 1, tzinfo=UTC)

# Every tenth customer is a prospect; the others share the orders by a skewed weight (a few buy a lot),
# spread over two years, so about half are in the trailing twelve months. 1 % are cancelled, 1 % still
# pending, 5 % half refunded.
_ALLOCATE = """
CREATE TEMP TABLE bench_alloc AS
WITH w AS (
    SELECT k, CASE WHEN k % 10 = 0 THEN 0 ELSE 0.3 + (-ln(1 - random())) ^ 2 END AS w FROM generate_series(1, $1) k
), c AS (
    SELECT k, floor(sum(w) OVER (ORDER BY k) / sum(w) OVER () * $2)::bigint AS hi FROM w
)
SELECT k, 'c-' || lpad(k::text, 8, '0') AS customer_id, COALESCE(lag(hi) OVER (ORDER BY k), 0) AS lo, hi FROM c
"""

_ORDERS = """
INSERT INTO segmenter.customer_order (workspace_id, customer_id, order_id, amount, currency, occurred_at, refunded,
                                      completed, cancelled)
SELECT $1, a.customer_id, 'o-' || lpad(o.g::text, 9, '0'), o.amount, 'EUR', o.at,
       CASE WHEN o.r < 0.05 THEN round(o.amount / 2, 2) ELSE 0 END, o.r >= 0.01, o.r BETWEEN 0.01 AND 0.02
FROM bench_alloc a,
     LATERAL (SELECT g, round((5 + exp(random() * 5))::numeric, 2) AS amount,
                     $2::timestamptz - random() * interval '730 days' AS at, random() AS r
              FROM generate_series(a.lo + 1, a.hi) g) o
"""

# What the event handlers keep on each customer: order count, net revenue, first and last order.
_CUSTOMERS = """
INSERT INTO segmenter.customer (workspace_id, customer_id, name, email, first_seen_at, last_event_at, status,
                                order_count, revenue, first_order_at, last_order_at)
SELECT $1, a.customer_id, 'Customer ' || a.k, 'c' || a.k || '@example.com',
       COALESCE(s.first_at, $2::timestamptz - interval '730 days'), COALESCE(s.last_at, $2::timestamptz),
       CASE WHEN s.n > 0 THEN 'active' ELSE 'prospect' END,
       COALESCE(s.n, 0), COALESCE(s.revenue, 0), s.first_at, s.last_at
FROM bench_alloc a LEFT JOIN (
    SELECT customer_id, count(*) AS n, sum(amount - refunded) AS revenue, min(occurred_at) AS first_at,
           max(occurred_at) AS last_at
    FROM segmenter.customer_order WHERE workspace_id = $1 AND completed AND NOT cancelled GROUP BY customer_id
) s ON s.customer_id = a.customer_id
ORDER BY random()
"""

# 1 % of the customers buy again, as the handlers would record it.
_NEW_ORDERS = """
WITH fresh AS (
    INSERT INTO segmenter.customer_order (workspace_id, customer_id, order_id, amount, currency, occurred_at, completed)
    SELECT workspace_id, customer_id, 'o-again', 40 + k % 200, 'EUR', $2::timestamptz, true
    FROM (SELECT workspace_id, customer_id, substr(customer_id, 3)::int AS k FROM segmenter.customer
          WHERE workspace_id = $1) c
    WHERE k % 100 = 1
    RETURNING customer_id, amount, occurred_at
)
UPDATE segmenter.customer c
SET order_count = c.order_count + 1, revenue = c.revenue + f.amount, last_order_at = f.occurred_at,
    first_order_at = COALESCE(c.first_order_at, f.occurred_at), updated_at = now()
FROM fresh f WHERE c.workspace_id = $1 AND c.customer_id = f.customer_id
"""

# What any recompute must at least do: read every order and add it up per customer.
_BASELINE = """
SELECT count(*), sum(total)
FROM (SELECT workspace_id, customer_id, sum(amount) AS total FROM segmenter.customer_order GROUP BY 1, 2) t
"""


async def generate(conn: Any, customers: int, orders: int) -> None:
    started = time.perf_counter()
    await conn.execute("SET work_mem = '256MB'")
    await conn.execute("SELECT setseed(0.42)")
    await conn.execute(_ALLOCATE, customers, orders)
    await conn.execute(_ORDERS, WORKSPACE, NOW)
    await conn.execute(_CUSTOMERS, WORKSPACE, NOW)
    await conn.execute("DROP TABLE bench_alloc")
    await vacuum(conn, "customer_order", "customer")
    print(f"  generated {customers:,} customers and {orders:,} orders in {time.perf_counter() - started:.0f} s")


async def vacuum(conn: Any, *tables: str) -> None:
    for t in tables:
        await conn.execute(f"VACUUM ANALYZE segmenter.{t}")


async def baseline_ms(conn: Any) -> float:
    """The best of three, with the run's work_mem, so the baseline is not penalised by a cold cache."""
    best = float("inf")
    async with conn.transaction():
        await conn.execute("SET LOCAL work_mem = '256MB'")
        for _ in range(3):
            started = time.perf_counter()
            await conn.fetchrow(_BASELINE)
            best = min(best, (time.perf_counter() - started) * 1000)
    return best


async def run_portfolio(database_url: str, *, customers: int, orders: int) -> list[Figure]:
    print(f"portfolio: {customers:,} customers, {orders:,} orders …", flush=True)
    conn = await asyncpg.connect(libpq_url(database_url))
    engine = create_engine(DatabaseSettings(database_url=database_url), schema="segmenter")
    try:
        await generate(conn, customers, orders)
        base = await baseline_ms(conn)
        print(f"  baseline, one GROUP BY over all {orders:,} orders: {base:,.0f} ms (best of 3)")
        cold = await _timed(engine, conn, "cold, first classification", NOW)
        await vacuum(conn, "customer", "outbox")  # what autovacuum does after a million updates
        warm = await _timed(engine, conn, "warm, nothing changed", NOW)
        await conn.execute(_NEW_ORDERS, WORKSPACE, NOW + timedelta(minutes=30))
        fresh = await _timed(engine, conn, "1 % of customers ordered again, an hour later", NOW + timedelta(hours=1))
    finally:
        await engine.dispose()
        await conn.close()
    size = f"{_count(customers)} cust/{_count(orders)} orders"
    target = "< 10,000 ms" if customers >= 1_000_000 else ""
    return [
        Figure(f"portfolio cold, {size}", cold, "ms", base, "GROUP BY all orders", target),
        Figure(f"portfolio warm, {size}", warm, "ms", base, "GROUP BY all orders", target),
        Figure(f"portfolio 1 % changed, {size}", fresh, "ms", base, "GROUP BY all orders", target),
    ]


def _count(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


async def _timed(engine: AsyncEngine, conn: Any, what: str, now: datetime) -> float:
    started = time.perf_counter()
    run: PortfolioRun = await recompute_portfolio(engine, WORKSPACE, now=now)
    took = (time.perf_counter() - started) * 1000
    stats = orjson.loads(
        await conn.fetchval(
            "SELECT stats FROM segmenter.portfolio_run WHERE workspace_id = $1 ORDER BY ran_at DESC LIMIT 1", WORKSPACE
        )
    )
    print(
        f"  {what}: {took:,.0f} ms ({stats['classify_ms']:,} ms classifying, then "
        f"{took - stats['classify_ms']:,.0f} ms recording and publishing in short transactions); "
        f"{run.changed:,} rows rewritten, {run.moved:,} moved tier or Pareto, {run.published:,} customer_changed staged",
        flush=True,
    )
    return took
