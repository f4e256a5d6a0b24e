"""The portfolio run: tiers, RFM scores and the Pareto flag of one workspace, recomputed set-based.

The rules are those of `domain/classification.py`, which the tests hold this SQL to. A run
(docs/portfolio.md has the measured costs):

1. the trailing revenue of every customer with recent orders, ranked, goes into a temporary table:
   reading the orders is the biggest cost, `CREATE TABLE AS` is one of the few writing statements
   PostgreSQL gives parallel workers, and `ix_customer_order_revenue` halves the reading;
2. one aggregate over the customers gives the counts, the total and the RFM cut points;
3. the customers whose values differ are collected, in `customer_id` order, and only those are
   updated, in that order and in chunks: the order the event handlers lock customers in, so the
   two never deadlock, and in chunks of their own transactions (when the run owns its
   connection), so a consumer batch waits for one chunk, not for the whole portfolio;
4. the customers whose tier or Pareto flag moved go to `publish_changes`; the run is recorded in
   `portfolio_run` before its first chunk, so a run that stops half-way is published by the next.

A re-run over an unchanged portfolio therefore writes nothing but its `portfolio_run` row.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from segmenter.changes import publish_changes
from segmenter.domain.classification import (
    DEFAULT_PARETO_SHARE,
    DEFAULT_TIER_SHARES,
    RFM_LEVELS,
    TIERS,
    TRAILING,
    Share,
    exact,
    pareto_fraction,
    tier_cuts,
)

# Sorts and hashes over a million customers fit in memory with this much; only this transaction gets it.
_WORK_MEM = text("SET LOCAL work_mem = '256MB'")
# One run per workspace at a time: two would compare against each other's half-written values.
# A run in the caller's transaction holds it for the transaction; a run in chunks, for the session.
_LOCK_KEY = "hashtextextended('segmenter.portfolio:' || :ws, 0)"
_LOCK = text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
_SESSION_LOCK = text(f"SELECT pg_advisory_lock({_LOCK_KEY})")
_UNLOCK = text(f"SELECT pg_advisory_unlock({_LOCK_KEY})")
# Temporary tables outlive a transaction, so a run in chunks keeps them; a run drops them when it
# ends, and first, in case one that failed half-way left them in its pooled session (a second run
# in the same transaction needs the names too).
_CLEAN = text("DROP TABLE IF EXISTS portfolio_revenue, portfolio_changed")

# Every customer with orders in the window, ranked: the one pass over the orders, run by parallel workers.
_REVENUE = text(
    """
    CREATE TEMP TABLE portfolio_revenue AS
    SELECT customer_id, revenue_12m, row_number() OVER w AS rank, sum(revenue_12m) OVER w - revenue_12m AS ahead
    FROM (
        SELECT customer_id, sum(amount - refunded) AS revenue_12m
        FROM customer_order
        WHERE workspace_id = :ws AND completed AND NOT cancelled
          AND occurred_at > CAST(:since AS timestamptz) AND occurred_at <= CAST(:now AS timestamptz)
        GROUP BY customer_id
    ) r
    WINDOW w AS (ORDER BY revenue_12m DESC, customer_id COLLATE "C" ROWS UNBOUNDED PRECEDING)
    """
)

# percentile_disc(f) is the value at rank ceil(f·n), so "x > cut[s]" holds exactly when at least
# ceil(s·n/5) buyers are strictly below x: the rule of `classification.scores`, without ranking every
# buyer. (Checked: the float products 0.2·n … 0.8·n round to the exact ceiling for every n up to 10^7.)
_TOTALS = text(
    """
    SELECT c.*, r.*
    FROM (
        SELECT count(*) AS customers, count(*) FILTER (WHERE buyer) AS buyers,
               percentile_disc(CAST(:q AS float8[])) WITHIN GROUP (ORDER BY last_order_at) FILTER (WHERE buyer) AS r,
               percentile_disc(CAST(:q AS float8[])) WITHIN GROUP (ORDER BY order_count) FILTER (WHERE buyer) AS f,
               percentile_disc(CAST(:q AS float8[])) WITHIN GROUP (ORDER BY revenue) FILTER (WHERE buyer) AS m
        FROM (SELECT *, order_count > 0 AND last_order_at IS NOT NULL AS buyer FROM customer WHERE workspace_id = :ws) b
    ) c, (
        SELECT count(*) AS positive, COALESCE(sum(revenue_12m), 0) AS total FROM portfolio_revenue WHERE revenue_12m > 0
    ) r
    """
)

_QUANTILES = [s / RFM_LEVELS for s in range(1, RFM_LEVELS)]
_BUYER = "c.order_count > 0 AND c.last_order_at IS NOT NULL"


def _score(column: str, cuts: str) -> str:
    terms = " + ".join(f"(c.{column} > ({cuts})[{i}])::int" for i in range(1, RFM_LEVELS))
    return f"CASE WHEN {_BUYER} THEN 1 + {terms} END"


_TIER = (
    "CASE WHEN {r}.revenue_12m > 0 THEN CASE WHEN {r}.rank <= :c1 THEN 'very_high' WHEN {r}.rank <= :c2 THEN 'high'"
    " WHEN {r}.rank <= :c3 THEN 'medium' ELSE 'low' END END"
)
_PARETO = "({r}.revenue_12m > 0 AND {r}.ahead < CAST(:target AS numeric))"

# Only the customers whose values differ, numbered in the order the event handlers lock customers
# in. Built from constants only, never from input.
_CHANGED = text(
    f"""
    CREATE TEMP TABLE portfolio_changed AS
    SELECT row_number() OVER (ORDER BY customer_id COLLATE "C") AS seq, false AS written, * FROM (
        SELECT c.customer_id, COALESCE(r.revenue_12m, 0) AS revenue_12m, {_TIER.format(r="r")} AS tier,
               {_score("last_order_at", "CAST(:r AS timestamptz[])")} AS rfm_r,
               {_score("order_count", "CAST(:f AS int[])")} AS rfm_f,
               {_score("revenue", "CAST(:m AS numeric[])")} AS rfm_m,
               COALESCE({_PARETO.format(r="r")}, false) AS pareto,
               c.revenue_12m AS was_revenue_12m, c.tier AS was_tier, c.rfm_r AS was_r, c.rfm_f AS was_f,
               c.rfm_m AS was_m, c.pareto AS was_pareto
        FROM customer c LEFT JOIN portfolio_revenue r ON r.customer_id = c.customer_id
        WHERE c.workspace_id = :ws
    ) n
    WHERE (revenue_12m, tier, rfm_r, rfm_f, rfm_m, pareto)
          IS DISTINCT FROM (was_revenue_12m, was_tier, was_r, was_f, was_m, was_pareto)
    """  # noqa: S608
)
_CHANGED_KEY = text("ALTER TABLE portfolio_changed ADD PRIMARY KEY (seq)")

# One chunk of the changes, by number (the seq index hands them over in locking order). `SKIP
# LOCKED` (a run in chunks): customers a consumer batch holds are left for a later pass, so the run
# never waits for a batch and a batch waits at most for one chunk; `left` counts them. Without it
# (a run in the caller's transaction, which must not hold its chunks while it waits for others),
# the chunk waits for them, in the same order as the handlers lock.
_WRITE_TEMPLATE = """
    WITH target AS (
        SELECT n.seq, n.customer_id FROM portfolio_changed n
        JOIN customer c ON c.workspace_id = :ws AND c.customer_id = n.customer_id
        WHERE n.seq > :after AND n.seq <= :last AND NOT n.written
        ORDER BY n.seq
        FOR UPDATE OF c {skip}
    ), written AS (
        UPDATE customer c
        SET revenue_12m = n.revenue_12m, tier = n.tier, rfm_r = n.rfm_r, rfm_f = n.rfm_f, rfm_m = n.rfm_m,
            pareto = n.pareto, classified_at = CAST(:now AS timestamptz)
        FROM target t JOIN portfolio_changed n ON n.seq = t.seq
        WHERE c.workspace_id = :ws AND c.customer_id = t.customer_id
        RETURNING t.seq, c.customer_id, n.tier IS DISTINCT FROM n.was_tier OR n.pareto <> n.was_pareto AS moved
    ), marked AS (
        UPDATE portfolio_changed p SET written = true FROM written w WHERE p.seq = w.seq
    )
    SELECT count(*) AS changed, COALESCE(array_agg(customer_id) FILTER (WHERE moved), '{{}}') AS moved,
           (SELECT count(*) FROM portfolio_changed n
              JOIN customer c ON c.workspace_id = :ws AND c.customer_id = n.customer_id
             WHERE n.seq > :after AND n.seq <= :last AND NOT n.written) - count(*) AS left
    FROM written
"""
_WRITE_SKIPPING = text(_WRITE_TEMPLATE.format(skip="SKIP LOCKED"))
_WRITE_WAITING = text(_WRITE_TEMPLATE.format(skip=""))
WRITE_CHUNK = 1_000

_FLOORS = text(
    f"""
    SELECT count(*) FILTER (WHERE {_PARETO.format(r="p")}) AS pareto,
           min(revenue_12m) FILTER (WHERE {_PARETO.format(r="p")}) AS pareto_floor,
           {", ".join(f"min(revenue_12m) FILTER (WHERE {_TIER.format(r='p')} = '{t}') AS {t}" for t in TIERS)},
           (SELECT count(*) FROM portfolio_changed) AS changes
    FROM portfolio_revenue p
    """  # noqa: S608
)


# One index probe per workspace instead of reading every customer.
_WORKSPACES = text(
    """
    WITH RECURSIVE w AS (
        SELECT min(workspace_id) AS id FROM customer
        UNION ALL
        SELECT (SELECT min(workspace_id) FROM customer WHERE workspace_id > w.id) FROM w WHERE w.id IS NOT NULL
    )
    SELECT id FROM w WHERE id IS NOT NULL
    """
)

# Recorded unpublished before the first change is written, completed after the last.
_RECORD = text(
    """
    INSERT INTO portfolio_run (workspace_id, ran_at, as_of, customers, changed, stats, duration_ms)
    VALUES (:ws, clock_timestamp(), :now, :customers, 0, '{}', 0)
    RETURNING ran_at
    """
)
_COMPLETE = text(
    """
    UPDATE portfolio_run
    SET changed = :changed, stats = CAST(:stats AS jsonb), duration_ms = :duration_ms,
        published_at = CASE WHEN :published THEN clock_timestamp() END
    WHERE workspace_id = :ws AND ran_at = :ran_at
    """
)

_UNPUBLISHED = text(
    """
    SELECT as_of FROM portfolio_run WHERE workspace_id = :ws AND published_at IS NULL ORDER BY ran_at
    """
)

# classified_at is written only on the rows a run changed, so it names that run's changes.
_CHANGED_BY = text("SELECT customer_id FROM customer WHERE workspace_id = :ws AND classified_at = :as_of")

_MARK_PUBLISHED = text(
    "UPDATE portfolio_run SET published_at = clock_timestamp() WHERE workspace_id = :ws AND as_of = :as_of"
)

PUBLISH_CHUNK = 2_000


@dataclass(frozen=True, slots=True)
class PortfolioRun:
    workspace_id: str
    as_of: datetime
    customers: int
    changed: int
    """Customers whose stored classification (or trailing revenue) was rewritten."""
    moved: int
    """Customers whose tier or Pareto flag changed."""
    published: int
    """`customer_changed` messages staged (what campaigns had not yet been told)."""
    duration_ms: int


async def workspaces(conn: AsyncConnection) -> list[str]:
    """The workspaces that have customers, for a loop that classifies each."""
    return [row[0] for row in await conn.execute(_WORKSPACES)]


async def recompute_portfolio(
    engine_or_conn: AsyncEngine | AsyncConnection,
    workspace_id: str,
    *,
    now: datetime,
    tier_shares: tuple[Share, Share, Share] = DEFAULT_TIER_SHARES,
    pareto_share: Share = DEFAULT_PARETO_SHARE,
) -> PortfolioRun:
    """Classifies one workspace as of `now` in one transaction (the caller's, if it has one open)."""
    tier_cuts(0, tier_shares)  # bad shares fail here, before anything is locked
    pareto_fraction(pareto_share)
    if isinstance(engine_or_conn, AsyncEngine):
        return await _run_then_publish(engine_or_conn, workspace_id, now, tier_shares, pareto_share)
    if engine_or_conn.in_transaction():
        return await _run(engine_or_conn, workspace_id, now, tier_shares, pareto_share)
    async with engine_or_conn.begin():
        return await _run(engine_or_conn, workspace_id, now, tier_shares, pareto_share)


async def _run_then_publish(
    engine: AsyncEngine, ws: str, now: datetime, tier_shares: Sequence[Share], pareto_share: Share
) -> PortfolioRun:
    """Classifies, writing in chunks of short transactions, then publishes in short ones too: a
    first classification moves most of a portfolio, and doing either in one transaction would hold
    every customer's row lock (and stall the consumers) for minutes."""
    async with engine.connect() as conn:
        await conn.execute(_SESSION_LOCK, {"ws": ws})
        await conn.commit()
        try:
            pending = [r[0] for r in await conn.execute(_UNPUBLISHED, {"ws": ws})]
            for as_of in pending:  # an earlier run stopped while writing or publishing
                keys = [(ws, r[0]) for r in await conn.execute(_CHANGED_BY, {"ws": ws, "as_of": as_of})]
                await conn.commit()
                await _publish(engine, ws, keys, as_of=as_of, now=now)
            run, moved = await _classify_and_record(
                conn, ws, now, tier_shares, pareto_share, publish=False, chunked=True
            )
        finally:
            await conn.rollback()  # whatever a failure left open
            await conn.execute(_UNLOCK, {"ws": ws})
            await conn.commit()
    started = time.perf_counter()
    published = await _publish(engine, ws, [(ws, c) for c in moved], as_of=now, now=now)
    return dataclasses.replace(
        run, published=published, duration_ms=run.duration_ms + _ms(time.perf_counter() - started)
    )


async def _publish(engine: AsyncEngine, ws: str, keys: list[tuple[str, str]], *, as_of: datetime, now: datetime) -> int:
    published = 0
    for start in range(0, len(keys), PUBLISH_CHUNK):
        async with engine.begin() as conn:
            published += await publish_changes(conn, keys[start : start + PUBLISH_CHUNK], now=now)
    async with engine.begin() as conn:
        await conn.execute(_MARK_PUBLISHED, {"ws": ws, "as_of": as_of})
    return published


async def _run(
    conn: AsyncConnection, ws: str, now: datetime, tier_shares: Sequence[Share], pareto_share: Share
) -> PortfolioRun:
    """All in the caller's transaction, publishing included."""
    await conn.execute(_LOCK, {"ws": ws})
    run, _ = await _classify_and_record(conn, ws, now, tier_shares, pareto_share, publish=True)
    return run


async def _classify_and_record(
    conn: AsyncConnection,
    ws: str,
    now: datetime,
    tier_shares: Sequence[Share],
    pareto_share: Share,
    *,
    publish: bool,
    chunked: bool = False,
) -> tuple[PortfolioRun, list[str]]:
    """`chunked`: commit the setup and every chunk of writes on their own (the caller holds the
    workspace's lock for the session); else all of it is the caller's one transaction."""
    started = time.perf_counter()
    await conn.execute(_WORK_MEM)
    cuts, ranks, floors, params = await _classify(conn, ws, now, tier_shares, pareto_share)
    ran_at = await conn.scalar(_RECORD, {"ws": ws, "now": now, "customers": cuts["customers"]})
    if chunked:
        await conn.commit()
    changed, moved = await _write(conn, params, floors["changes"], chunked=chunked)
    await conn.execute(_CLEAN)
    classified = time.perf_counter()
    published = await publish_changes(conn, [(ws, c) for c in moved], now=now) if publish else 0
    done_at = time.perf_counter()
    stats = _stats(cuts, floors, changed, len(moved), ranks, tier_shares, pareto_share) | {
        "published": published,
        "classify_ms": _ms(classified - started),
        "publish_ms": _ms(done_at - classified),
    }
    run = PortfolioRun(ws, now, cuts["customers"], changed, len(moved), published, _ms(done_at - started))
    await conn.execute(
        _COMPLETE,
        {
            "ws": ws,
            "ran_at": ran_at,
            "changed": changed,
            "stats": orjson.dumps(stats, default=str).decode(),
            "duration_ms": run.duration_ms,
            "published": publish,
        },
    )
    if chunked:
        await conn.commit()
    return run, moved


async def _write(
    conn: AsyncConnection, params: dict[str, Any], changes: int, *, chunked: bool
) -> tuple[int, list[str]]:
    """Writes the changes chunk by chunk; returns how many rows were written and who moved.

    In chunks of their own transactions, a pass writes what no consumer batch holds, and passes
    repeat (a moment apart, while those batches commit) until nothing is left; a customer erased
    since the classification is simply not there to write."""
    written, moved = 0, list[str]()
    ranges = list(range(0, changes, WRITE_CHUNK))
    while ranges:
        unfinished = []
        for after in ranges:
            chunk = params | {"after": after, "last": after + WRITE_CHUNK}
            if chunked:
                done = (await conn.execute(_WRITE_SKIPPING, chunk)).one()
                await conn.commit()
            else:
                async with _without(conn, "enable_hashjoin", "enable_mergejoin"):  # a nested loop keeps the order
                    done = (await conn.execute(_WRITE_WAITING, chunk)).one()
            written += done.changed
            moved.extend(done.moved)
            if done.left:
                unfinished.append(after)
        ranges = unfinished
        if ranges:
            await asyncio.sleep(0.05)
    return written, moved


async def _classify(
    conn: AsyncConnection, ws: str, now: datetime, tier_shares: Sequence[Share], pareto_share: Share
) -> tuple[RowMapping, dict[str, int], RowMapping, dict[str, Any]]:
    """Computes the new classification into portfolio_changed; returns the totals, the tiers' last
    ranks, the floors, and the parameters a chunk of writes takes."""
    await conn.execute(_CLEAN)
    # The planner underestimates how many customers a workspace has (n_distinct) and hashes all the
    # orders; the covering index hands them over already grouped by customer, in about half the time.
    async with _without(conn, "enable_seqscan"):
        await conn.execute(_REVENUE, {"ws": ws, "since": now - TRAILING, "now": now})
    cuts = (await conn.execute(_TOTALS, {"ws": ws, "q": _QUANTILES})).mappings().one()
    ranks = dict(zip(("c1", "c2", "c3"), tier_cuts(cuts["positive"], tier_shares), strict=True))
    target = pareto_fraction(pareto_share) * cuts["total"]
    params = {"ws": ws, "now": now, "r": cuts["r"], "f": cuts["f"], "m": cuts["m"], "target": target} | ranks
    await conn.execute(_CHANGED, params)
    await conn.execute(_CHANGED_KEY)
    floors = (await conn.execute(_FLOORS, params)).mappings().one()
    return cuts, ranks, floors, params


@asynccontextmanager
async def _without(conn: AsyncConnection, *methods: str) -> AsyncIterator[None]:
    """Plans the statements inside without these planner methods, and only those."""
    for method in methods:  # names are constants from this module, never input
        await conn.execute(text(f"SET LOCAL {method} = off"))
    yield
    for method in methods:
        await conn.execute(text(f"SET LOCAL {method} = on"))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _stats(
    cuts: RowMapping,
    floors: RowMapping,
    changed: int,
    moved: int,
    ranks: Mapping[str, int],
    tier_shares: Sequence[Share],
    share: Share,
) -> dict[str, Any]:
    """What a reader of `portfolio_run` needs to see why a customer landed where it did."""
    return {
        "customers": cuts["customers"],
        "buyers": cuts["buyers"],
        "with_revenue_12m": cuts["positive"],
        "revenue_12m": cuts["total"],
        "tier_shares": [str(exact(s)) for s in tier_shares],
        "tier_last_rank": dict(zip(TIERS, ranks.values(), strict=False)),
        "tier_floor": {t: floors[t] for t in TIERS},
        "pareto_share": str(exact(share)),
        "pareto": floors["pareto"],
        "pareto_floor": floors["pareto_floor"],
        "rfm_cuts": {"r": cuts["r"], "f": cuts["f"], "m": cuts["m"]},
        "changed": changed,
        "moved": moved,
    }
