"""Predicted customer lifetime value, and the per-customer summaries both models are fitted on.

Summaries follow the `lifetimes` package's convention (and Fader & Hardie's CDNOW data): orders
are bucketed into periods (a day by default) and a period with several orders counts as one
purchase whose amount is their sum. `x` is the number of purchase periods after the first one,
`t_x` the time from the first purchase period to the last, `T` from the first to the period of
the calibration end, and `m` the mean amount of the repeat periods (the first purchase is left
out, as the Gamma-Gamma model expects). Grouping is by sorting, never a loop per customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.domain import bgnbd, gamma_gamma
from scoring.domain.bgnbd import BgNbdParams
from scoring.domain.gamma_gamma import GammaGammaParams

Array = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

DAY = np.timedelta64(1, "D")


@dataclass(frozen=True, eq=False)
class Summary:
    """One row per customer with an order on or before the calibration end, sorted by customer id.

    `m` is NaN for customers with no repeat purchase: there is no repeat spend to average, and a
    zero would read as a real (and very poor) customer.
    """

    customer_ids: npt.NDArray[np.generic]
    x: Array
    t_x: Array
    T: Array
    m: Array


def _period_index(dates: npt.NDArray[np.datetime64], period: np.timedelta64) -> npt.NDArray[np.int64]:
    """Which period each instant falls in, counting from the Unix epoch (so a week starts on a Thursday)."""
    micros = dates.astype("datetime64[us]").astype(np.int64)
    step = int(period / np.timedelta64(1, "us"))
    if step <= 0:
        raise ValueError("period must be positive")
    out: npt.NDArray[np.int64] = micros // step
    return out


def summarise(
    customer_ids: ArrayLike,
    dates: ArrayLike,
    amounts: ArrayLike | None,
    *,
    calibration_end: np.datetime64,
    period: np.timedelta64 = DAY,
    unit: np.timedelta64 | None = None,
) -> Summary:
    """(x, t_x, T, m) per customer from orders up to and including `calibration_end`.

    Orders after `calibration_end` are ignored, so a summary as of a past date is what was known
    then (the holdout check depends on it). Times come out in `unit` (default: `period`), e.g.
    `period` a day and `unit` a week for Fader & Hardie's CDNOW summaries.
    """
    ids = np.asarray(customer_ids)
    when = np.asarray(dates, dtype="datetime64[us]")
    money = np.zeros(ids.shape) if amounts is None else np.asarray(amounts, dtype=np.float64)
    if not ids.shape == when.shape == money.shape:
        raise ValueError("customer_ids, dates and amounts differ in shape")
    cut = np.array([calibration_end], dtype="datetime64[us]")
    keep = when <= cut[0]
    ids, when, money = ids[keep], when[keep], money[keep]
    if ids.size == 0:
        nothing = np.zeros(0)
        return Summary(customer_ids=ids, x=nothing, t_x=nothing, T=nothing, m=nothing)
    known, code = np.unique(ids, return_inverse=True)
    index = _period_index(when, period)
    order = np.lexsort((index, code))
    code, index, money = code[order], index[order], money[order]
    # One row per (customer, period), its amount the sum of the period's orders.
    new_period = np.ones(code.size, dtype=bool)
    new_period[1:] = (code[1:] != code[:-1]) | (index[1:] != index[:-1])
    starts = np.flatnonzero(new_period)
    p_code, p_index = code[starts], index[starts]
    p_money = np.add.reduceat(money, starts)
    # Then one row per customer.
    new_customer = np.ones(p_code.size, dtype=bool)
    new_customer[1:] = p_code[1:] != p_code[:-1]
    first = np.flatnonzero(new_customer)
    last = np.append(first[1:], p_code.size) - 1
    x = (last - first).astype(np.float64)
    scale = float(period / (unit if unit is not None else period))
    end = _period_index(cut, period)[0]
    repeat_money = np.add.reduceat(p_money, first) - p_money[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(x > 0, repeat_money / x, np.nan)
    return Summary(
        customer_ids=known[p_code[first]],
        x=x,
        t_x=(p_index[last] - p_index[first]) * scale,
        T=(end - p_index[first]) * scale,
        m=m,
    )


def holdout_purchases(
    summary: Summary,
    customer_ids: ArrayLike,
    dates: ArrayLike,
    *,
    calibration_end: np.datetime64,
    holdout_end: np.datetime64,
    period: np.timedelta64 = DAY,
) -> Array:
    """Purchase periods each summarised customer had after the calibration period, up to `holdout_end`.

    Counted the way `x` is (a period once), so they compare with E[X(t) | x, t_x, T] for the
    holdout's length. A period that straddles the calibration end belongs to the calibration.
    """
    known = summary.customer_ids
    if known.size == 0:
        return np.zeros(0)
    ids, when = np.asarray(customer_ids), np.asarray(dates, dtype="datetime64[us]")
    start = _period_index(np.array([calibration_end], dtype="datetime64[us]"), period)[0]
    index = _period_index(when, period)
    keep = (index > start) & (when <= np.array([holdout_end], dtype="datetime64[us]")[0])
    ids, index = ids[keep], index[keep]
    position = np.minimum(np.searchsorted(known, ids), known.size - 1)
    found = known[position] == ids  # customers first seen in the holdout are not in the summary
    # Distinct (customer, period) pairs, then a count per customer.
    pairs = np.unique(np.stack([position[found], index[found]]), axis=1)
    out: Array = np.bincount(pairs[0], minlength=known.size).astype(np.float64)
    return out


def discounted_value(
    params: BgNbdParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    spend: ArrayLike,
    *,
    periods: int = 12,
    period_length: float = 30.0,
    discount_rate: float = 0.01,
) -> Array:
    """Σ_k spend · (E[X(k L)] - E[X((k-1) L)]) / (1 + d)^k over `periods` periods of length L.

    The standard discounted-cash-flow CLV (as `lifetimes` computes it): purchases expected in each
    period, from differences of the cumulative eq. (10), valued at the expected spend and
    discounted to today at the end of their period. P(alive) is a common factor, taken once.
    """
    xs, ts, Ts = bgnbd.as_summary(x, t_x, T)
    total = discounted_purchases_if_alive(
        params, xs, Ts, periods=periods, period_length=period_length, discount_rate=discount_rate
    )
    out: Array = bgnbd.p_alive(params, xs, ts, Ts) * np.asarray(spend, dtype=np.float64) * total
    return out


def discounted_purchases_if_alive(
    params: BgNbdParams,
    x: ArrayLike,
    T: ArrayLike,
    *,
    periods: int = 12,
    period_length: float = 30.0,
    discount_rate: float = 0.01,
) -> Array:
    """Σ_k (E[X(k L)] - E[X((k-1) L)]) / (1 + d)^k for a customer known to be alive: the CLV's purchases
    before P(alive), which is also what a lapsed customer would buy if won back."""
    if periods < 1 or period_length <= 0 or discount_rate <= -1:
        raise ValueError("need periods >= 1, period_length > 0 and discount_rate > -1")
    xs, Ts = np.asarray(x, dtype=np.float64), np.asarray(T, dtype=np.float64)
    total = np.zeros_like(xs)
    previous = np.zeros_like(xs)
    for k in range(1, periods + 1):  # a loop over periods, each step vectorised over customers
        cumulative = bgnbd.expected_purchases_if_alive(params, k * period_length, xs, Ts)
        total += (cumulative - previous) / (1.0 + discount_rate) ** k
        previous = cumulative
    return total


def predicted_clv(
    purchases: BgNbdParams,
    spend: GammaGammaParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    m: ArrayLike,
    *,
    periods: int = 12,
    period_length: float = 30.0,
    discount_rate: float = 0.01,
    margin: float = 1.0,
) -> Array:
    """Discounted value of the next `periods` periods: BG/NBD purchases times Gamma-Gamma spend.

    Customers with no repeat purchase are valued at the population's mean spend (see
    `gamma_gamma.expected_average_value`); `margin` turns revenue into profit when known.
    """
    value = gamma_gamma.expected_average_value(spend, x, m) * margin
    return discounted_value(
        purchases, x, t_x, T, value, periods=periods, period_length=period_length, discount_rate=discount_rate
    )
