"""What a campaign recovered beyond what would have come back anyway, and which variant to send next.

Every customer enrolled counts, in the group they were assigned to (treatment or control),
whether or not a message reached them: comparing only the customers who got messages would
flatter the campaign.

- Reactivation rate: the difference of two proportions, with a normal-approximation (Wald)
  interval. It is fair for the hundreds of customers a campaign enrols; with a handful, or
  rates at 0 or 1, the interval is too narrow and the report should say so.
- Revenue per customer (zero for those who did not come back): the difference of two means with
  Welch's interval, since the two groups' spreads differ (the control group is small).
- Incremental revenue: the revenue difference per customer times the treatment group's size,
  less what the offers cost (discounts given, incentives redeemed).
- Variants: Thompson sampling on Beta(1 + reactivated, 1 + not reactivated) posteriors, so a
  variant that wins more often is sent more often, and a new one still gets tried.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True, slots=True)
class Group:
    """Sufficient statistics, so a report can fill them from SQL aggregates (count, sum, sum of squares)."""

    customers: int
    reactivated: int
    revenue: float
    revenue_squares: float

    @classmethod
    def of(cls, revenues: Sequence[float], reactivated: int | None = None) -> Group:
        """From each customer's recovered revenue; without `reactivated`, those with revenue came back."""
        came_back = sum(r > 0 for r in revenues) if reactivated is None else reactivated
        return cls(len(revenues), came_back, math.fsum(revenues), math.fsum(r * r for r in revenues))

    @property
    def rate(self) -> float:
        return self.reactivated / self.customers

    @property
    def revenue_per_customer(self) -> float:
        return self.revenue / self.customers

    @property
    def revenue_variance(self) -> float:
        """The sample variance (n - 1) of revenue per customer."""
        n = self.customers
        return max(0.0, (self.revenue_squares - self.revenue**2 / n) / (n - 1)) if n > 1 else math.nan


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class Uplift:
    treatment_rate: float
    control_rate: float
    rate_uplift: float  # absolute: 0.03 is three percentage points
    rate_interval: Interval
    treatment_revenue_per_customer: float
    control_revenue_per_customer: float
    revenue_uplift_per_customer: float
    revenue_interval: Interval | None  # None with fewer than two customers in a group
    incremental_revenue: float
    offer_cost: float
    net_incremental_revenue: float
    net_interval: Interval | None


def uplift(treatment: Group, control: Group, *, offer_cost: float = 0.0, confidence: float = 0.95) -> Uplift:
    if treatment.customers == 0 or control.customers == 0:
        raise ValueError("uplift needs customers in both the treatment and the control group")
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    rate_diff = treatment.rate - control.rate
    rate_se = math.sqrt(_binomial_variance(treatment) + _binomial_variance(control))
    revenue_diff = treatment.revenue_per_customer - control.revenue_per_customer
    revenue_interval = welch_interval(treatment, control, confidence)
    n = treatment.customers
    net_interval = None
    if revenue_interval is not None:
        net_interval = Interval(revenue_interval.low * n - offer_cost, revenue_interval.high * n - offer_cost)
    return Uplift(
        treatment_rate=treatment.rate,
        control_rate=control.rate,
        rate_uplift=rate_diff,
        rate_interval=Interval(rate_diff - z * rate_se, rate_diff + z * rate_se),
        treatment_revenue_per_customer=treatment.revenue_per_customer,
        control_revenue_per_customer=control.revenue_per_customer,
        revenue_uplift_per_customer=revenue_diff,
        revenue_interval=revenue_interval,
        incremental_revenue=revenue_diff * n,
        offer_cost=offer_cost,
        net_incremental_revenue=revenue_diff * n - offer_cost,
        net_interval=net_interval,
    )


def welch_interval(a: Group, b: Group, confidence: float = 0.95) -> Interval | None:
    """The interval for mean(a) - mean(b) without assuming equal variances."""
    if a.customers < 2 or b.customers < 2:
        return None
    va, vb = a.revenue_variance / a.customers, b.revenue_variance / b.customers
    diff = a.revenue_per_customer - b.revenue_per_customer
    if va + vb == 0:
        return Interval(diff, diff)
    df = (va + vb) ** 2 / (va**2 / (a.customers - 1) + vb**2 / (b.customers - 1))
    half = t_quantile((1 + confidence) / 2, df) * math.sqrt(va + vb)
    return Interval(diff - half, diff + half)


def _binomial_variance(g: Group) -> float:
    return g.rate * (1 - g.rate) / g.customers


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile for any real df (Welch's df is fractional), by bisection on the exact CDF."""
    if not 0.5 <= p < 1:
        raise ValueError("p must be in [0.5, 1)")
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        low, high = high, high * 2
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if _t_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2


def _t_cdf(t: float, df: float) -> float:
    """P(T <= t) for t >= 0, through the regularized incomplete beta function."""
    return 1 - 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) by its continued fraction (Numerical Recipes, 6.4), flipped where it converges faster."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Lentz's method; converges in a few dozen terms on the side `_incomplete_beta` picks."""
    c, d = 1.0, 1 / _nonzero(1 - (a + b) * x / (a + 1))
    result = d
    for m in range(1, 300):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        for term in (even, odd):
            d = 1 / _nonzero(1 + term * d)
            c = _nonzero(1 + term / c)
            result *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return result


def _nonzero(v: float) -> float:
    return v if abs(v) > 1e-300 else 1e-300


@dataclass(frozen=True, slots=True)
class Tally:
    """One variant's record on a step: customers it was sent to, and how many came back."""

    sent: int
    reactivated: int


def thompson(arms: Mapping[str, Tally], rng: random.Random) -> str:
    """Draws each arm's reactivation rate from its posterior and sends the best draw.

    Arms are drawn in name order, so the same seed picks the same arm whatever the mapping's order.
    """
    if not arms:
        raise ValueError("no variants to choose from")
    draws = {
        name: rng.betavariate(1 + arms[name].reactivated, 1 + arms[name].sent - arms[name].reactivated)
        for name in sorted(arms)
    }
    return max(draws, key=draws.__getitem__)
