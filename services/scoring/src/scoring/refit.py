"""Fits a workspace's value models and rescores every customer: summaries come from PostgreSQL
(set-based, one row per customer), the maths from the pure `domain` modules, vectorised.

The summary follows `domain.clv.summarise` exactly (a UTC day is one purchase period; `x` counts
repeat days, `t_x` and `T` are in days, `m` is the mean of the repeat days' spend), computed where
the orders are so only one row per customer crosses the wire.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cartera_common.db import json_rows
from cartera_common.events.changes import SCORES_UPDATED
from cartera_common.events.envelope import derived_envelope
from cartera_common.outbox import OutMessage, emit
from cartera_common.topics import SCORES
from scoring.domain import bgnbd, gamma_gamma
from scoring.domain.clv import predicted_clv

HORIZONS = (30, 90, 365)
_CHUNK = 20_000

_SUMMARY = """
WITH days AS (
    SELECT customer_id, date_trunc('day', occurred_at AT TIME ZONE 'UTC') AS d, sum(amount - refunded) AS spend
    FROM customer_order
    WHERE workspace_id = $1 AND completed AND NOT cancelled AND occurred_at <= $2
    GROUP BY 1, 2)
SELECT customer_id,
       count(*) - 1 AS x,
       extract(epoch FROM max(d) - min(d)) / 86400 AS t_x,
       extract(epoch FROM date_trunc('day', $2 AT TIME ZONE 'UTC') - min(d)) / 86400 AS big_t,
       (sum(spend) - (array_agg(spend ORDER BY d))[1]) / NULLIF(count(*) - 1, 0) AS m
FROM days GROUP BY customer_id ORDER BY customer_id
"""

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

_OLD = "SELECT customer_id, p_alive FROM score WHERE workspace_id = $1"

_WRITE = text(
    """
    INSERT INTO score (workspace_id, customer_id, p_alive, expected_30, expected_90, expected_365,
                       expected_order_value, clv, fallback, fit_id, scored_at)
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(
        workspace_id text, customer_id text, p_alive float8, expected_30 float8, expected_90 float8,
        expected_365 float8, expected_order_value float8, clv float8, fallback boolean, fit_id bigint,
        scored_at timestamptz)
    ON CONFLICT (workspace_id, customer_id) DO UPDATE
    SET p_alive = EXCLUDED.p_alive, expected_30 = EXCLUDED.expected_30, expected_90 = EXCLUDED.expected_90,
        expected_365 = EXCLUDED.expected_365, expected_order_value = EXCLUDED.expected_order_value,
        clv = EXCLUDED.clv, fallback = EXCLUDED.fallback, fit_id = EXCLUDED.fit_id, scored_at = EXCLUDED.scored_at
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
        s = await _summary(conn, workspace_id, as_of)
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
        published = await _score(conn, workspace_id, s, purchases.params, spend, fit_id, now)
    return Refit(workspace_id, as_of, int(s["x"].size), fit_id, gg_id, purchases.converged, published, holdout)


async def _summary(conn: AsyncConnection, ws: str, as_of: datetime) -> dict[str, Any]:
    raw = await conn.get_raw_connection()
    rows = await raw.driver_connection.fetch(_SUMMARY, ws, as_of)  # type: ignore[union-attr]
    return {
        "ids": [r["customer_id"] for r in rows],
        "x": np.array([r["x"] for r in rows], dtype=np.float64),
        "t_x": np.array([float(r["t_x"]) for r in rows], dtype=np.float64),
        "T": np.array([float(r["big_t"]) for r in rows], dtype=np.float64),
        "m": np.array([math.nan if r["m"] is None else float(r["m"]) for r in rows], dtype=np.float64),
    }


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


async def _score(
    conn: AsyncConnection,
    ws: str,
    s: dict[str, Any],
    purchases: bgnbd.BgNbdParams,
    spend: gamma_gamma.GammaGammaFit | None,
    fit_id: int,
    now: datetime,
) -> int:
    """Writes every customer's scores; publishes those whose P(alive) moved by a point or more."""
    x, t_x, big_t, m = s["x"], s["t_x"], s["T"], s["m"]
    alive = bgnbd.p_alive(purchases, x, t_x, big_t)
    expected = {h: bgnbd.conditional_expected_purchases(purchases, h, x, t_x, big_t) for h in HORIZONS}
    value = clv = np.full(x.shape, np.nan)
    if spend is not None:
        value = gamma_gamma.expected_average_value(spend.params, x, m)
        clv = predicted_clv(purchases, spend.params, x, t_x, big_t, m)
    raw = await conn.get_raw_connection()
    old = {r["customer_id"]: r["p_alive"] for r in await raw.driver_connection.fetch(_OLD, ws)}  # type: ignore[union-attr]
    rows, messages = [], []
    for i, cid in enumerate(s["ids"]):
        row = {
            "workspace_id": ws, "customer_id": cid, "p_alive": float(alive[i]),
            "expected_30": float(expected[30][i]), "expected_90": float(expected[90][i]),
            "expected_365": float(expected[365][i]), "expected_order_value": _finite(value[i]),
            "clv": _finite(clv[i]), "fallback": bool(x[i] == 0), "fit_id": fit_id, "scored_at": now,
        }  # fmt: skip
        rows.append(row)
        before = old.get(cid)
        if before is None or abs(before - row["p_alive"]) >= 0.01:
            messages.append(_message(row, now))
    for start in range(0, len(rows), _CHUNK):
        await conn.execute(_WRITE, {"rows": json_rows(rows[start : start + _CHUNK])})
    await emit(conn, messages)
    return len(messages)


def _finite(value: float) -> float | None:
    """No finite value (e.g. spend with no finite mean when q <= 1) is stored as unknown, never as 0."""
    return float(value) if math.isfinite(value) else None


def _message(row: dict[str, Any], now: datetime) -> OutMessage:
    ws, cid = row["workspace_id"], row["customer_id"]
    payload = {k: row[k] for k in ("p_alive", "expected_30", "expected_90", "expected_365", "expected_order_value",
                                  "clv", "fallback", "fit_id")}  # fmt: skip
    envelope = derived_envelope(
        SCORES_UPDATED, workspace_id=ws, customer_id=cid, payload=payload, at=now, source="scoring",
        identity=f"fit:{row['fit_id']}",
    )  # fmt: skip
    return OutMessage.of(SCORES, envelope)
