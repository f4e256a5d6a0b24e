"""Read queries over the portfolio, always inside one workspace.

They return plain row mappings: the HTTP layer shapes them, and set-based SQL does the counting,
so no endpoint walks the whole portfolio in Python.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Result, RowMapping, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from segmenter.tables import customer

c = customer.c

# Value now, derived the same way everywhere it is shown or filtered on.
PROFIT = func.coalesce(c.margin, c.revenue) - c.cost_to_serve
UNPROFITABLE = and_(PROFIT < 0, c.cost_to_serve > 0)

LIST_COLUMNS = (
    c.customer_id,
    c.name,
    c.email,
    c.industry,
    c.company_size,
    c.region,
    c.country,
    c.segment,
    c.status,
    c.status_since,
    c.tier,
    c.frequency,
    c.pareto,
    c.unhappy,
    c.responsiveness,
    c.order_count,
    c.revenue,
    c.revenue_12m,
    PROFIT.label("profit"),
    UNPROFITABLE.label("unprofitable"),
    c.first_order_at,
    c.last_order_at,
)


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    """Values within a field are alternatives; fields combine with AND."""

    status: tuple[str, ...] = ()
    tier: tuple[str, ...] = ()
    frequency: tuple[str, ...] = ()
    responsiveness: tuple[str, ...] = ()
    industry: tuple[str, ...] = ()
    segment: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    pareto: bool | None = None
    unhappy: bool | None = None
    unprofitable: bool | None = None


@asynccontextmanager
async def reading(engine: AsyncEngine, *, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
    """A connection for reads: autocommit spares BEGIN and ROLLBACK round trips; `snapshot`
    gives several queries one consistent view instead."""
    async with engine.connect() as conn:
        level = "REPEATABLE READ" if snapshot else "AUTOCOMMIT"
        await conn.execution_options(isolation_level=level, postgresql_readonly=snapshot)
        yield conn


_DETAIL_COLUMNS = ", ".join(
    f"c.{name}"
    for name in (
        *("customer_id", "workspace_id", "name", "email", "phone", "locale", "time_zone", "industry"),
        *("company_size", "region", "country", "traits", "segment", "consent", "first_seen_at", "last_event_at"),
        *("order_count", "revenue", "revenue_12m", "margin", "cost_to_serve", "first_order_at", "last_order_at"),
        *("favourite_category", "status", "status_since", "status_reason", "policy_version", "due_at"),
        *("usual_gap_days", "frequency", "p_alive", "p_alive_at", "unhappy", "leave_reasons", "contacted_at"),
        *("responded_at", "responsiveness", "tier", "rfm_r", "rfm_m", "rfm_f", "pareto", "classified_at"),
    )
)

# One round trip: the row, plus its history, issues and latest events aggregated as JSON. Each
# subquery walks an index that starts with (workspace_id, customer_id). Completed orders are not
# copied into the timeline table (they are most events, and customer_order has them): they join
# it here.
_DETAIL = text(
    f"""
    SELECT {_DETAIL_COLUMNS},
           round(c.revenue / NULLIF(c.order_count, 0), 4) AS average_order,
           COALESCE(c.margin, c.revenue) - c.cost_to_serve AS profit,
           (COALESCE(c.margin, c.revenue) - c.cost_to_serve < 0 AND c.cost_to_serve > 0) AS unprofitable,
           (SELECT COALESCE(json_agg(json_build_object(
                       'from', s.from_status, 'to', s.to_status, 'at', s.at, 'reason', s.reason,
                       'policy_version', s.policy_version) ORDER BY s.id DESC), '[]')
              FROM status_change s
             WHERE s.workspace_id = c.workspace_id AND s.customer_id = c.customer_id) AS status_history,
           (SELECT COALESCE(json_agg(json_build_object(
                       'kind', i.kind, 'ref', i.ref, 'reason_code', i.reason_code, 'detail', i.detail,
                       'opened_at', i.opened_at, 'resolved_at', i.resolved_at)
                       ORDER BY i.opened_at DESC, i.kind, i.ref), '[]')
              FROM customer_issue i
             WHERE i.workspace_id = c.workspace_id AND i.customer_id = c.customer_id) AS issues,
           (SELECT COALESCE(json_agg(json_build_object(
                       'occurred_at', t.occurred_at, 'event_id', t.event_id, 'type', t.type, 'summary', t.summary)
                       ORDER BY t.occurred_at DESC, t.event_id DESC), '[]')
              FROM (SELECT * FROM (
                      (SELECT t.occurred_at, t.event_id, t.type, t.summary FROM timeline t
                        WHERE t.workspace_id = c.workspace_id AND t.customer_id = c.customer_id
                        ORDER BY t.occurred_at DESC, t.event_id DESC LIMIT :timeline_limit)
                      UNION ALL
                      (SELECT o.occurred_at, NULL, 'order_completed',
                              jsonb_strip_nulls(jsonb_build_object('order_id', o.order_id, 'amount', o.amount,
                                  'currency', o.currency, 'coupon_code', o.coupon_code, 'categories', o.categories))
                         FROM customer_order o
                        WHERE o.workspace_id = c.workspace_id AND o.customer_id = c.customer_id AND o.completed
                        ORDER BY o.occurred_at DESC LIMIT :timeline_limit)) AS u
                     ORDER BY 1 DESC, 2 DESC NULLS LAST LIMIT :timeline_limit) t) AS timeline
      FROM customer c
     WHERE c.workspace_id = :ws AND c.customer_id = :customer_id
    """  # noqa: S608 - the column list is a constant
)


async def customer_detail(
    conn: AsyncConnection, *, workspace_id: str, customer_id: str, timeline_limit: int = 50
) -> RowMapping | None:
    """The customer row with `status_history`, `issues` and `timeline` (newest first), or None."""
    params = {"ws": workspace_id, "customer_id": customer_id, "timeline_limit": timeline_limit}
    return (await conn.execute(_DETAIL, params)).mappings().first()


def _conditions(workspace_id: str, f: CustomerFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [c.workspace_id == workspace_id]
    for column, values in (
        (c.status, f.status),
        (c.tier, f.tier),
        (c.frequency, f.frequency),
        (c.responsiveness, f.responsiveness),
        (c.segment, f.segment),
        (c.region, f.region),
    ):
        if values:
            conds.append(column.in_(values))
    if f.industry:
        # Sector codes nest by prefix (NACE 56 contains 56.10); starts_with needs no LIKE escaping.
        conds.append(or_(*(func.starts_with(func.lower(c.industry), p.lower(), type_=Boolean) for p in f.industry)))
    for column, wanted in ((c.pareto, f.pareto), (c.unhappy, f.unhappy)):
        if wanted is not None:
            conds.append(column if wanted else ~column)
    if f.unprofitable is not None:
        conds.append(UNPROFITABLE if f.unprofitable else ~UNPROFITABLE)
    return conds


async def list_customers(
    conn: AsyncConnection, *, workspace_id: str, filters: CustomerFilter, after: str | None, limit: int
) -> Sequence[RowMapping]:
    """One page in customer_id order, starting after the cursor's customer."""
    conds = _conditions(workspace_id, filters)
    if after is not None:
        conds.append(c.customer_id > after)
    query = select(*LIST_COLUMNS).where(*conds).order_by(c.customer_id).limit(limit)
    return (await conn.execute(query)).mappings().all()


async def iter_customers(
    engine: AsyncEngine, *, workspace_id: str, filters: CustomerFilter, chunk: int = 1000
) -> AsyncIterator[Sequence[RowMapping]]:
    """Every matching customer in pages; each page takes a connection only while it is read, so a
    slow download holds no connection open."""
    after: str | None = None
    while True:
        async with reading(engine) as conn:
            rows = await list_customers(conn, workspace_id=workspace_id, filters=filters, after=after, limit=chunk)
        if rows:
            yield rows
        if len(rows) < chunk:
            return
        after = rows[-1]["customer_id"]


_BUYING_SQL = "status IN ('new', 'active', 'reactivated')"
_UNPROFITABLE_SQL = "cost_to_serve > 0 AND COALESCE(margin, revenue) - cost_to_serve < 0"

# One scan answers every breakdown: each grouping set groups by one dimension, () is the total.
_BREAKDOWN = text(
    f"""
    SELECT CASE WHEN GROUPING(status) = 0 THEN 'status' WHEN GROUPING(tier) = 0 THEN 'tier'
                WHEN GROUPING(frequency) = 0 THEN 'frequency' WHEN GROUPING(industry) = 0 THEN 'industry'
                WHEN GROUPING(region) = 0 THEN 'region' WHEN GROUPING(company_size) = 0 THEN 'company_size'
                ELSE 'total' END AS dimension,
           COALESCE(status, tier, frequency, industry, region, company_size) AS key,
           count(*) AS customers,
           count(*) FILTER (WHERE {_BUYING_SQL}) AS buying,
           count(*) FILTER (WHERE pareto) AS pareto,
           count(*) FILTER (WHERE unhappy) AS unhappy,
           COALESCE(sum(revenue), 0) AS revenue,
           COALESCE(sum(revenue_12m), 0) AS revenue_12m,
           count(*) FILTER (WHERE revenue_12m > 0) AS buyers_12m,
           COALESCE(sum(revenue_12m) FILTER (WHERE revenue_12m > 0), 0) AS positive_revenue_12m,
           COALESCE(sum(revenue_12m) FILTER (WHERE pareto AND revenue_12m > 0), 0) AS pareto_revenue_12m,
           count(*) FILTER (WHERE {_UNPROFITABLE_SQL}) AS unprofitable,
           COALESCE(sum(cost_to_serve - COALESCE(margin, revenue)) FILTER (WHERE {_UNPROFITABLE_SQL}), 0) AS loss
      FROM customer
     WHERE workspace_id = :ws
     GROUP BY GROUPING SETS ((status), (tier), (frequency), (industry), (region), (company_size), ())
    """  # noqa: S608 - constants only
)

# The customers at evenly spaced ranks of the revenue ordering, with revenue accumulated so far.
# Rank r is the ceil(n·i/points)-th for some i exactly when floor(r·points/n) steps up at r, which
# picks the points without a join. Ties need no tie-break: equal values give equal running sums.
_CURVE = text(
    """
    WITH ranked AS (
        SELECT row_number() OVER w AS rank, sum(revenue_12m) OVER w AS cumulative, count(*) OVER () AS n
          FROM customer
         WHERE workspace_id = :ws AND revenue_12m > 0
        WINDOW w AS (ORDER BY revenue_12m DESC ROWS UNBOUNDED PRECEDING)
    )
    SELECT rank AS customers, cumulative AS revenue_12m
      FROM ranked
     WHERE rank * :points / n > (rank - 1) * :points / n
     ORDER BY rank
    """
)

_LEAVING = text(
    """
    SELECT u.reason, count(*) AS customers,
           count(*) FILTER (WHERE c.status = 'lapsed') AS lapsed,
           count(*) FILTER (WHERE c.status = 'lost') AS lost,
           count(*) FILTER (WHERE c.unhappy) AS unhappy
      FROM customer c
     CROSS JOIN LATERAL (SELECT DISTINCT r FROM unnest(c.leave_reasons) AS r) AS u(reason)
     WHERE c.workspace_id = :ws AND c.status IN ('lapsed', 'lost')
     GROUP BY u.reason
     ORDER BY customers DESC, u.reason
    """
)

_COSTLIEST = text(
    f"""
    SELECT customer_id, name, status, revenue, margin, cost_to_serve,
           COALESCE(margin, revenue) - cost_to_serve AS profit
      FROM customer
     WHERE workspace_id = :ws AND {_UNPROFITABLE_SQL}
     ORDER BY profit, customer_id
     LIMIT :top
    """  # noqa: S608 - constants only
)

_CLASSIFIED = text("SELECT max(as_of) FROM portfolio_run WHERE workspace_id = :ws")


@dataclass(frozen=True, slots=True)
class PortfolioData:
    breakdown: list[dict[str, Any]]
    curve: list[dict[str, Any]]
    leaving: list[dict[str, Any]]
    costliest: list[dict[str, Any]]
    classified_as_of: datetime | None


async def portfolio(conn: AsyncConnection, *, workspace_id: str, points: int, top: int) -> PortfolioData:
    """Everything GET /portfolio shows, in five set-based queries over one snapshot."""
    ws = {"ws": workspace_id}
    return PortfolioData(
        breakdown=_dicts(await conn.execute(_BREAKDOWN, ws)),
        curve=_dicts(await conn.execute(_CURVE, {**ws, "points": points})),
        leaving=_dicts(await conn.execute(_LEAVING, ws)),
        costliest=_dicts(await conn.execute(_COSTLIEST, {**ws, "top": top})),
        classified_as_of=(await conn.execute(_CLASSIFIED, ws)).scalar(),
    )


# Unknown probability weighs nothing and unknown amount counts as zero: the forecast never
# promises more than was recorded.
_PIPELINE = text(
    """
    SELECT GROUPING(month) = 1 AS is_total, month,
           count(*) AS opportunities,
           COALESCE(sum(amount), 0) AS amount,
           COALESCE(round(sum(amount * CAST(probability AS numeric)), 4), 0) AS weighted_amount,
           count(*) FILTER (WHERE probability IS NULL) AS without_probability
      FROM (SELECT to_char(expected_close, 'YYYY-MM') AS month, amount, probability
              FROM opportunity
             WHERE workspace_id = :ws AND state = 'open') AS o
     GROUP BY GROUPING SETS ((month), ())
     ORDER BY is_total, month NULLS LAST
    """
)


async def pipeline(conn: AsyncConnection, *, workspace_id: str) -> list[dict[str, Any]]:
    """Open opportunities by expected close month (`month` None: unscheduled), then the total row."""
    return _dicts(await conn.execute(_PIPELINE, {"ws": workspace_id}))


def _dicts(result: Result[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in result.mappings().all()]
