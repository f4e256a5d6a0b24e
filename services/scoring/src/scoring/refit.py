"""Fits a workspace's value models and rescores every customer: summaries come from PostgreSQL
(set-based, one row per customer, `customers.order_summaries`), the maths from the pure `domain`
modules, vectorised. The fit uses orders up to `as_of`; the scores are as of now, with the new fit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from scoring.customers import order_summaries
from scoring.domain import bgnbd, gamma_gamma
from scoring.rescore import rescore_workspace

# Repeat days after the calibration end, for the holdout check.
_HOLDOUT = """
SELECT count(DISTINCT (customer_id, date_trunc('day', occurred_at AT TIME ZONE 'UTC')))
FROM customer_order
WHERE workspace_id = $1 AND completed AND NOT cancelled AND occurred_at > $2 AND occurred_at <= $3
  AND date_trunc('day', occurred_at AT TIME ZONE 'UTC') > date_trunc('day', $2 AT TIME ZONE 'UTC')
  AND customer_id IN (SELECT customer_id FROM customer_order
                      WHERE workspace_id = $1 AND completed AND NOT cancelled AND occurred_at <= $2)
"""

_STORE_FIT = text(
    """
    INSERT INTO model_fit (workspace_id, kind, fitted_at, as_of, window_start, params, log_likelihood, customers,
                           converged, message, holdout)
    VALUES (:ws, :kind, :fitted_at, :as_of, :window_start, CAST(:params AS jsonb), :ll, :customers, :converged,
            :message, CAST(:holdout AS jsonb))
    RETURNING id
    """
)


@dataclass(frozen=True)
class Refit:
    workspace_id: str
    as_of: datetime
    customers: int
    bgnbd_fit_id: int
    gamma_gamma_fit_id: int | None
    converged: bool
    published: int
    holdout: dict[str, float] | None


async def refit(engine: AsyncEngine, workspace_id: str, *, as_of: datetime, now: datetime) -> Refit:
    """Fits on orders up to `as_of`; with `as_of` in the past, orders after it are the holdout."""
    async with engine.connect() as conn:
        s = await order_summaries(conn, workspace_id, as_of)
        if s["x"].size == 0:
            raise ValueError(f"workspace {workspace_id!r} has no orders on or before {as_of.isoformat()}")
        actual = await _holdout_actual(conn, workspace_id, as_of, now)
    purchases = bgnbd.fit(s["x"], s["t_x"], s["T"])
    repeat = s["x"] > 0
    spend = gamma_gamma.fit(s["x"][repeat], s["m"][repeat]) if np.count_nonzero(repeat) >= 10 else None
    holdout = None
    if actual is not None:
        days = (now - as_of).total_seconds() / 86400
        predicted = float(bgnbd.conditional_expected_purchases(purchases.params, days, s["x"], s["t_x"], s["T"]).sum())
        holdout = {"days": days, "predicted": predicted, "actual": float(actual)}
    async with engine.begin() as conn:
        fit_id = await _store(conn, workspace_id, "bgnbd", purchases, as_of, now, holdout)
        gg_id = await _store(conn, workspace_id, "gamma_gamma", spend, as_of, now, None) if spend else None
        published = await rescore_workspace(conn, workspace_id, now=now)
    return Refit(workspace_id, as_of, int(s["x"].size), fit_id, gg_id, purchases.converged, published, holdout)


async def _holdout_actual(conn: AsyncConnection, ws: str, as_of: datetime, now: datetime) -> int | None:
    if (now - as_of).total_seconds() < 86400:
        return None  # no later period to check against
    raw = await conn.get_raw_connection()
    return int(await raw.driver_connection.fetchval(_HOLDOUT, ws, as_of, now))  # type: ignore[union-attr]


async def _store(
    conn: AsyncConnection, ws: str, kind: str, fitted: Any, as_of: datetime, now: datetime, holdout: Any
) -> int:
    params = {
        "ws": ws,
        "kind": kind,
        "fitted_at": now,
        "as_of": as_of,
        "window_start": None,
        "params": orjson.dumps(dataclasses.asdict(fitted.params)).decode(),
        "ll": float(fitted.log_likelihood),
        "customers": int(fitted.customers),
        "converged": bool(fitted.converged),
        "message": str(fitted.message),
        "holdout": None if holdout is None else orjson.dumps(holdout).decode(),
    }
    return int((await conn.execute(_STORE_FIT, params)).scalar_one())
