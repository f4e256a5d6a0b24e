"""Do we want them back? The expected return of a win-back against its cost, per lapsed customer.

- P(reactivation) is the workspace's observed rate of lapsed customers coming back, smoothed
  towards the customer's own prior by `prior_strength` pseudo-customers (a Beta prior):
  (returned + k · prior) / (lapsed + k). Without history it is the prior itself: P(alive) for a
  repeat buyer, and for a one-time buyer (whose P(alive) is 1 by the model's definition) the
  workspace's share of buyers who ever bought twice.
- Predicted value is what the customer brings in 12 months if won back: the discounted CLV as if
  alive, times the margin rate (the customer's own, or the rules' default).
- Cost is the sequence's channel cost (emails, plus a call in a full sequence) plus the expected
  cost of the offer (its share of the next order, paid only when the customer returns).
- Intensity: "full" (a sequence with a call) when the expected return is at least `full_ratio`
  times the full sequence's cost; "light" (email only) when it exceeds the light sequence's
  cost; otherwise "none". A customer who costs more than it brings is never worth it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.domain.rules import INTENSITIES, Intensity, WinbackRules

Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]

FULL, LIGHT, NONE = (INTENSITIES.index(i) for i in ("full", "light", "none"))


@dataclass(frozen=True, eq=False)
class Decisions:
    worth: Mask
    intensity: Codes  # an index into INTENSITIES
    expected_return: Array
    cost: Array  # of the chosen intensity; of the light sequence when none
    p_reactivation: Array
    predicted_value: Array


def p_reactivation(returned: float, lapsed: float, prior: npt.ArrayLike, strength: float) -> Array:
    """The workspace's comeback rate, shrunk towards each customer's prior; the prior alone without history."""
    p0 = np.clip(np.asarray(prior, dtype=np.float64), 0.0, 1.0)
    seen = max(lapsed, 0.0)
    back = min(max(returned, 0.0), seen)
    if seen + strength <= 0:
        return p0
    out: Array = (back + strength * p0) / (seen + strength)
    return out


def decide(
    p: npt.ArrayLike,
    value_if_alive: npt.ArrayLike,
    margin_rate: npt.ArrayLike,
    order_value: npt.ArrayLike,
    unprofitable: npt.ArrayLike,
    rules: WinbackRules,
) -> Decisions:
    """The decision for each customer; inputs are arrays of one length (NaN margin: the rules' default)."""
    chance = np.asarray(p, dtype=np.float64)
    rate = np.asarray(margin_rate, dtype=np.float64)
    rate = np.where(np.isfinite(rate), np.clip(rate, 0.0, 1.0), rules.margin_rate)
    value = np.maximum(np.asarray(value_if_alive, dtype=np.float64), 0.0) * rate
    offer = chance * rules.offer_rate * np.maximum(np.asarray(order_value, dtype=np.float64), 0.0)
    expected = chance * value
    light = rules.emails * rules.email_cost + offer
    full = light + rules.call_cost
    loses = np.asarray(unprofitable, dtype=bool)
    intensity = np.select(
        [loses, (expected >= rules.full_ratio * full) & (expected > full), expected > light],
        [NONE, FULL, LIGHT],
        default=NONE,
    ).astype(np.int8)
    cost = np.where(intensity == FULL, full, light)
    return Decisions(
        worth=intensity != NONE,
        intensity=intensity,
        expected_return=expected,
        cost=cost,
        p_reactivation=chance,
        predicted_value=value,
    )


def intensity_name(code: int) -> Intensity:
    return INTENSITIES[code]
