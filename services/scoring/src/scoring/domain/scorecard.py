"""Every customer's score row from what scoring knows of them, and whether a change is worth telling.

Two steps, so a refit can set the workspace's thresholds between them: `values` (the models:
P(alive), expected purchases, CLV, value now), then `decide` (quadrant, win-back, lead score and
channel). Both are vectorised over the customers of one workspace.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.domain import bgnbd, gamma_gamma, leads, quadrants, winback
from scoring.domain.bgnbd import BgNbdParams
from scoring.domain.clv import discounted_purchases_if_alive
from scoring.domain.gamma_gamma import GammaGammaParams
from scoring.domain.leads import Profile, TopProfile
from scoring.domain.quadrants import Thresholds
from scoring.domain.rules import INTENSITIES, ScoringRules

Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

HORIZONS = (30, 90, 365)
AWAY = ("lapsed", "lost")
NOT_YET_BOUGHT = (None, "prospect", "potential")
# What `scores_updated` carries beyond P(alive) and the expectations; `published` keeps the last sent.
WATCHED = ("p_alive", "quadrant", "winback_worth", "winback_intensity", "channel", "lead_score")
P_ALIVE_STEP = 0.01
LEAD_STEP = 1.0


@dataclass(frozen=True, eq=False)
class Customers:
    """One workspace's customers, aligned by position; non-buyers have x = 0 and NaN elsewhere."""

    ids: Sequence[str]
    buyer: Mask
    x: Array
    t_x: Array
    T: Array
    m: Array
    revenue_12m: Array
    margin_12m: Array  # NaN: no order in the window carries a margin
    cost_12m: Array
    margin_rate: Array  # the customer's margin / revenue over orders with a margin; NaN: unknown
    status: Sequence[str | None]
    pareto: Mask
    profiles: Sequence[Profile]
    # Activity rows: which customer (position), what kind, how many days ago, how many times.
    activity_customer: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    activity_kind: Sequence[str] = ()
    activity_age: Array = field(default_factory=lambda: np.zeros(0))
    activity_count: Array = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class Context:
    """The workspace's current fit, rules and statistics."""

    rules: ScoringRules
    fit_id: int | None = None
    purchases: BgNbdParams | None = None
    spend: GammaGammaParams | None = None
    thresholds: Thresholds | None = None
    top: TopProfile = TopProfile()
    repeat_rate: float | None = None  # share of buyers who bought twice
    lapsed: int = 0
    returned: int = 0
    winbacks: int = 0  # win-backs that ran to an end in the treatment group
    winbacks_won: int = 0  # and brought the customer back


@dataclass(frozen=True, eq=False)
class Values:
    scored: Mask  # buyers with a fit
    p_alive: Array
    expected: dict[int, Array]
    order_value: Array
    clv: Array
    if_alive: Array  # discounted value over the CLV horizon if alive (revenue)
    value_now: Array
    next_days: Array  # median days to the next purchase, if still a customer


def values(c: Customers, ctx: Context) -> Values:
    n = len(c.ids)
    nan = np.full(n, np.nan)
    p_alive, order_value, clv, if_alive, next_days = nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy()
    expected = {h: nan.copy() for h in HORIZONS}
    scored = c.buyer & (ctx.purchases is not None)
    if ctx.purchases is not None and scored.any():
        x, t_x, T, m = c.x[scored], c.t_x[scored], c.T[scored], c.m[scored]
        p_alive[scored] = bgnbd.p_alive(ctx.purchases, x, t_x, T)
        for h in HORIZONS:
            expected[h][scored] = bgnbd.conditional_expected_purchases(ctx.purchases, h, x, t_x, T)
        next_days[scored] = bgnbd.median_days_to_next_purchase(ctx.purchases, x, T)
        if ctx.spend is not None:
            spend = gamma_gamma.expected_average_value(ctx.spend, x, m)
            order_value[scored] = spend
            horizon = ctx.rules.value
            purchases = discounted_purchases_if_alive(
                ctx.purchases, x, T, periods=horizon.clv_months, discount_rate=horizon.monthly_discount_rate
            )
            if_alive[scored] = spend * purchases
            clv[scored] = p_alive[scored] * if_alive[scored]
    profit = np.where(np.isfinite(c.margin_12m), c.margin_12m, c.revenue_12m) - c.cost_12m
    value_now = np.where(c.buyer | (c.cost_12m > 0), profit, np.nan)
    return Values(scored, p_alive, expected, order_value, clv, if_alive, value_now, next_days)


def workspace_thresholds(c: Customers, v: Values, rules: ScoringRules) -> Thresholds:
    return quadrants.thresholds(v.value_now[c.buyer], v.clv[v.scored], rules.quadrants)


def top_customers(c: Customers, v: Values) -> Mask:
    """The Pareto customers when the segmenter has flagged any; else the top fifth by 12-month revenue."""
    if c.pareto.any():
        return c.pareto
    revenue = np.where(c.buyer, c.revenue_12m, np.nan)
    positive = revenue[np.isfinite(revenue) & (revenue > 0)]
    if positive.size == 0:
        return np.zeros(len(c.ids), dtype=bool)
    out: Mask = np.isfinite(revenue) & (revenue >= np.quantile(positive, 0.8)) & (revenue > 0)
    return out


def repeat_rate(c: Customers) -> float | None:
    return float(np.mean(c.x[c.buyer] > 0)) if c.buyer.any() else None


def decide(c: Customers, v: Values, ctx: Context, *, now: datetime) -> list[dict[str, Any]]:
    """One row per customer, in the `score` table's columns."""
    rules = ctx.rules
    placement = quadrants.place(v.value_now, c.cost_12m, v.clv, ctx.thresholds or Thresholds(math.inf, math.inf))
    codes = np.where(v.scored & (ctx.thresholds is not None), placement.quadrant, quadrants.UNKNOWN).tolist()
    away = np.array([s in AWAY for s in c.status], dtype=bool)
    wins = (v.scored & away & np.isfinite(v.if_alive)).tolist()
    prior = np.where(c.x > 0, v.p_alive, ctx.repeat_rate if ctx.repeat_rate is not None else v.p_alive)
    # The workspace's own win-back record when it has one; until then, how often lapsed customers came back.
    won, tried = (ctx.winbacks_won, ctx.winbacks) if ctx.winbacks else (ctx.returned, ctx.lapsed)
    p = winback.p_reactivation(won, tried, prior, rules.winback.prior_strength)
    d = winback.decide(p, v.if_alive, c.margin_rate, v.order_value, placement.unprofitable, rules.winback)
    worth, intensity = d.worth.tolist(), d.intensity.tolist()
    lead = _lead_columns(c, ctx)
    model = {
        k: a.tolist() for k, a in zip(_MODEL, (v.p_alive, *v.expected.values(), v.order_value, v.clv), strict=True)
    }
    money = {
        k: a.tolist() for k, a in zip(_WINBACK[2:], (p, d.predicted_value, d.expected_return, d.cost), strict=True)
    }
    scored, x, value_now = v.scored.tolist(), c.x.tolist(), v.value_now.tolist()
    next_days = v.next_days.tolist()
    unprofitable = placement.unprofitable.tolist()
    rows = []
    for i, cid in enumerate(c.ids):
        row: dict[str, Any] = {"customer_id": cid, "scored_at": now, "value_now": _finite(value_now[i])}
        row |= {k: _finite(col[i]) if scored[i] else None for k, col in model.items()}
        row["fallback"] = x[i] == 0 if scored[i] else None
        wait = next_days[i]
        row["next_purchase_at"] = (
            now + timedelta(days=wait) if scored[i] and math.isfinite(wait) and wait < 36_500 else None
        )
        row["fit_id"] = ctx.fit_id if scored[i] else None
        row["quadrant"] = quadrants.name(codes[i])
        row["quadrant_reason"] = quadrants.reason(codes[i], unprofitable[i])
        if wins[i]:
            row |= {"winback_worth": worth[i], "winback_intensity": INTENSITIES[intensity[i]]}
            row |= {k: _finite(col[i]) for k, col in money.items()}
        else:
            row |= dict.fromkeys(_WINBACK)
        row |= lead.get(i, _NO_LEAD)
        rows.append(row)
    return rows


_MODEL = ("p_alive", "expected_30", "expected_90", "expected_365", "expected_order_value", "clv")
_WINBACK = (
    "winback_worth",
    "winback_intensity",
    "p_reactivation",
    "predicted_value",
    "expected_return",
    "winback_cost",
)
_LEAD = ("lead_score", "lead_fit", "lead_engagement", "lookalike", "channel")
_NO_LEAD: dict[str, Any] = dict.fromkeys(_LEAD)


def _lead_columns(c: Customers, ctx: Context) -> dict[int, dict[str, Any]]:
    """The lead columns of customers who have not bought (by position): prospects and potentials."""
    rules = ctx.rules.leads
    lead = ~c.buyer & np.array([s in NOT_YET_BOUGHT for s in c.status], dtype=bool)
    at = np.flatnonzero(lead)
    if at.size == 0:
        return {}
    raw = leads.engagement_raw(
        c.activity_customer, c.activity_kind, c.activity_age, c.activity_count, len(c.ids), rules
    )
    ls = leads.score_leads([c.profiles[i] for i in at.tolist()], raw[at], ctx.top, rules)
    cols = zip(
        ls.score.tolist(), ls.fit.tolist(), ls.engagement.tolist(), ls.similarity.tolist(), ls.channel, strict=True
    )
    return {int(i): dict(zip(_LEAD, col, strict=True)) for i, col in zip(at, cols, strict=True)}


def _finite(value: float) -> float | None:
    """No finite value is stored as unknown, never as 0."""
    return float(value) if math.isfinite(value) else None


def view(row: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a row whose changes are worth publishing."""
    return {k: row[k] for k in WATCHED}


def worth_publishing(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """P(alive) moved by 0.01, the lead score by a point, or the quadrant, win-back or channel changed.

    A customer never published before is published once there is anything to say.
    """
    if before is None:
        return any(after[k] is not None for k in WATCHED)
    if _moved(before.get("p_alive"), after["p_alive"], P_ALIVE_STEP):
        return True
    if _moved(before.get("lead_score"), after["lead_score"], LEAD_STEP):
        return True
    return any(before.get(k) != after[k] for k in ("quadrant", "winback_worth", "winback_intensity", "channel"))


def _moved(before: float | None, after: float | None, step: float) -> bool:
    if before is None or after is None:
        return (before is None) != (after is None)
    return abs(after - before) >= step
