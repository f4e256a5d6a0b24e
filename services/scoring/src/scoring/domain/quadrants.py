"""Retain, develop, maintain or abandon: value now against potential, vectorised over customers.

Value now is the trailing 12 months' profit (margin, or revenue where no order carries a margin,
minus the cost to serve); potential is the predicted 12-month value (CLV). "High" means at or
above the workspace's threshold and above zero, so a customer who brought nothing is never high
value however low the threshold:

| value now | potential | quadrant | the action |
| --- | --- | --- | --- |
| costs more than it brings | any | abandon | stop spending on it |
| high | high | retain | keep it close: the best accounts |
| low | high | develop | grow it: the value is still to come |
| high | low | maintain | harvest it at low cost while it lasts |
| low | low | abandon | no investment |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.domain.rules import QUADRANTS, Quadrant, QuadrantRules

Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]

UNKNOWN = -1  # no potential to compare (no spend model yet)
RETAIN, DEVELOP, MAINTAIN, ABANDON = (QUADRANTS.index(q) for q in ("retain", "develop", "maintain", "abandon"))

REASONS = {
    "unprofitable": "costs more than it brings",
    "retain": "high value now, high potential",
    "develop": "low value now, high potential",
    "maintain": "high value now, low potential",
    "abandon": "low value now, low potential",
}


@dataclass(frozen=True)
class Thresholds:
    value: float
    potential: float


@dataclass(frozen=True, eq=False)
class Placement:
    quadrant: Codes  # an index into QUADRANTS, or UNKNOWN
    unprofitable: Mask


def thresholds(value_now: npt.ArrayLike, potential: npt.ArrayLike, rules: QuadrantRules) -> Thresholds:
    """The workspace's cut-offs: fixed amounts when the rules set them, else quantiles of the positive values.

    Only positive values count, so a portfolio where most customers are dormant (value 0) still
    splits its active customers instead of calling every one of them high value.
    """
    return Thresholds(
        value=_cut(np.asarray(value_now, dtype=np.float64), rules.value_quantile, rules.value_threshold),
        potential=_cut(np.asarray(potential, dtype=np.float64), rules.potential_quantile, rules.potential_threshold),
    )


def _cut(values: Array, quantile: float, fixed: float | None) -> float:
    if fixed is not None:
        return fixed
    positive = values[np.isfinite(values) & (values > 0)]
    return float(np.quantile(positive, quantile)) if positive.size else 0.0


def place(value_now: npt.ArrayLike, cost: npt.ArrayLike, potential: npt.ArrayLike, t: Thresholds) -> Placement:
    """Each customer's quadrant; UNKNOWN where the potential is not known (NaN)."""
    value = np.asarray(value_now, dtype=np.float64)
    spent = np.asarray(cost, dtype=np.float64)
    future = np.asarray(potential, dtype=np.float64)
    high_value = (value >= t.value) & (value > 0)
    high_potential = (future >= t.potential) & (future > 0)
    unprofitable = (spent > 0) & (value < 0)
    codes = np.select(
        [unprofitable, high_value & high_potential, high_potential, high_value],
        [ABANDON, RETAIN, DEVELOP, MAINTAIN],
        default=ABANDON,
    ).astype(np.int8)
    codes[~np.isfinite(future) & ~unprofitable] = UNKNOWN
    return Placement(quadrant=codes, unprofitable=unprofitable)


def name(code: int) -> Quadrant | None:
    return None if code == UNKNOWN else QUADRANTS[code]


def reason(code: int, unprofitable: bool) -> str | None:
    """Why a customer sits in its quadrant, in words."""
    if code == UNKNOWN:
        return None
    return REASONS["unprofitable" if unprofitable else QUADRANTS[code]]
