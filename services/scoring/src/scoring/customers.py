"""Loads what scoring knows of a workspace's customers (all of them, or some) as aligned arrays.

Summaries are computed in PostgreSQL, one row per customer, following `domain.clv.summarise`
exactly (a UTC day is one purchase period; `x` counts repeat days, `t_x` and `T` are in days, `m` is
the mean of the repeat days' spend), so only one row per customer crosses the wire.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncConnection

from scoring.domain.fold import COST
from scoring.domain.rules import PROFILE_FIELDS
from scoring.domain.scorecard import Customers

YEAR_DAYS = 365.0

# $1 workspace, $2 the instant; {ids} narrows to some customers ($3).
_ORDERS = """
WITH o AS (
    SELECT customer_id, occurred_at, amount - refunded AS spend, margin
    FROM customer_order
    WHERE workspace_id = $1 AND completed AND NOT cancelled AND occurred_at <= $2 {ids}),
days AS (
    SELECT customer_id, date_trunc('day', occurred_at AT TIME ZONE 'UTC') AS d, sum(spend) AS spend
    FROM o GROUP BY 1, 2),
summary AS (
    SELECT customer_id,
           count(*) - 1 AS x,
           extract(epoch FROM max(d) - min(d)) / 86400 AS t_x,
           extract(epoch FROM date_trunc('day', $2 AT TIME ZONE 'UTC') - min(d)) / 86400 AS big_t,
           (sum(spend) - (array_agg(spend ORDER BY d))[1]) / NULLIF(count(*) - 1, 0) AS m
    FROM days GROUP BY customer_id),
money AS (
    SELECT customer_id,
           COALESCE(sum(spend) FILTER (WHERE occurred_at > $2 - interval '365 days'), 0) AS revenue_12m,
           sum(margin) FILTER (WHERE occurred_at > $2 - interval '365 days') AS margin_12m,
           sum(margin) / NULLIF(sum(spend) FILTER (WHERE margin IS NOT NULL), 0) AS margin_rate
    FROM o GROUP BY customer_id)
SELECT * FROM summary JOIN money USING (customer_id) ORDER BY customer_id
"""

_PROFILES = """
SELECT customer_id, status, pareto, segment, industry, company_size, region, country, traits
FROM customer_profile WHERE workspace_id = $1 {ids}
"""

# Days since the start of each activity's UTC day.
_ACTIVITY = """
SELECT customer_id, kind, count, amount,
       extract(epoch FROM CAST($2 AS timestamptz) - (day::timestamp AT TIME ZONE 'UTC')) / 86400 AS age
FROM customer_activity WHERE workspace_id = $1 {ids}
"""


async def _fetch(conn: AsyncConnection, sql: str, ws: str, ids: Sequence[str] | None, *args: Any) -> list[Any]:
    raw = await conn.get_raw_connection()
    narrow = "" if ids is None else f"AND customer_id = ANY(${len(args) + 2}::text[])"
    params = (ws, *args) if ids is None else (ws, *args, list(ids))
    rows: list[Any] = await raw.driver_connection.fetch(sql.format(ids=narrow), *params)  # type: ignore[union-attr]
    return rows


async def order_summaries(
    conn: AsyncConnection, ws: str, at: datetime, ids: Sequence[str] | None = None
) -> dict[str, Any]:
    """Per buyer (orders on or before `at`), sorted by id: the BG/NBD summary and the money of the last year."""
    rows = await _fetch(conn, _ORDERS, ws, ids, at)
    return {
        "ids": [r["customer_id"] for r in rows],
        "x": np.array([r["x"] for r in rows], dtype=np.float64),
        "t_x": np.array([float(r["t_x"]) for r in rows], dtype=np.float64),
        "T": np.array([float(r["big_t"]) for r in rows], dtype=np.float64),
        "m": np.array([_num(r["m"]) for r in rows], dtype=np.float64),
        "revenue_12m": np.array([float(r["revenue_12m"]) for r in rows], dtype=np.float64),
        "margin_12m": np.array([_num(r["margin_12m"]) for r in rows], dtype=np.float64),
        "margin_rate": np.array([_num(r["margin_rate"]) for r in rows], dtype=np.float64),
    }


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _profile(row: Any) -> dict[str, str | None]:
    """Traits first, so a trait can never pass for one of the profile's own fields."""
    traits = row["traits"] or {}
    out: dict[str, str | None] = {k: None if v is None else str(v) for k, v in traits.items()}
    out.update({f: row[f] for f in PROFILE_FIELDS})
    return out


async def load_customers(conn: AsyncConnection, ws: str, now: datetime, ids: Sequence[str] | None = None) -> Customers:
    """The workspace's customers (those in `ids`, or everyone with an order or a profile) as of `now`."""
    orders = await order_summaries(conn, ws, now, ids)
    profiles = {r["customer_id"]: r for r in await _fetch(conn, _PROFILES, ws, ids)}
    activity = await _fetch(conn, _ACTIVITY, ws, ids, now)
    known = sorted(set(orders["ids"]) | profiles.keys() | ({r["customer_id"] for r in activity}))
    position = {c: i for i, c in enumerate(known)}
    n = len(known)
    where = np.array([position[c] for c in orders["ids"]], dtype=np.int64)

    def spread(column: str, fill: float) -> Any:
        out = np.full(n, fill)
        out[where] = orders[column]
        return out

    buyer = np.zeros(n, dtype=bool)
    buyer[where] = True
    a_customer = np.array([position[r["customer_id"]] for r in activity], dtype=np.int64)
    a_age = np.array([float(r["age"]) for r in activity], dtype=np.float64)
    a_amount = np.array([float(r["amount"]) for r in activity], dtype=np.float64)
    a_kind = [r["kind"] for r in activity]
    is_cost = np.array([k == COST for k in a_kind], dtype=bool)
    recent_cost = is_cost & (a_age >= 0) & (a_age < YEAR_DAYS)
    cost = np.bincount(a_customer[recent_cost], weights=a_amount[recent_cost], minlength=n).astype(np.float64)
    none: dict[str, Any] = {"status": None, "pareto": False, "traits": None, **dict.fromkeys(PROFILE_FIELDS)}
    rows = [profiles.get(c, none) for c in known]
    return Customers(
        ids=known,
        buyer=buyer,
        x=spread("x", 0.0),
        t_x=spread("t_x", 0.0),
        T=spread("T", 0.0),
        m=spread("m", math.nan),
        revenue_12m=spread("revenue_12m", 0.0),
        margin_12m=spread("margin_12m", math.nan),
        cost_12m=cost,
        margin_rate=spread("margin_rate", math.nan),
        status=[r["status"] for r in rows],
        pareto=np.array([bool(r["pareto"]) for r in rows], dtype=bool),
        profiles=[_profile(r) for r in rows],
        activity_customer=a_customer[~is_cost],
        activity_kind=[k for k in a_kind if k != COST],
        activity_age=a_age[~is_cost],
        activity_count=np.array([float(r["count"]) for r in activity], dtype=np.float64)[~is_cost],
    )
