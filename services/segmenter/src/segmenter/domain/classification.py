"""The portfolio's relative classification as plain Python: the rules `portfolio.py` computes in SQL.

The SQL is what runs; this is the readable statement of the rules and the oracle the tests hold
it to, so both must agree to the last customer. The rules (docs/portfolio.md explains why):

- **Trailing revenue**: the net amount (`amount - refunded`) of completed, not cancelled orders
  with `now - 365 days < occurred_at <= now`.
- **Tier**: customers with positive trailing revenue, ranked by it (highest first, equal revenue
  by `customer_id` in code-point order); with `n` of them and shares `(s1, s2, s3)`, ranks up to
  `ceil(s1·n)` are very high, up to `ceil((s1+s2)·n)` high, up to `ceil((s1+s2+s3)·n)` medium,
  the rest low. No positive trailing revenue, no tier.
- **RFM** (customers with at least one completed order): each of recency (last order), frequency
  (order count) and monetary value (all-time net revenue) scores `1 + floor(5·w/n)`, where `w`
  is how many of the `n` buyers have a strictly worse value: equal values score alike, the worst
  scores 1, and 5 takes beating four fifths of the buyers (if most buyers have one order, they
  all score F = 1 rather than being split arbitrarily across scores).
- **Pareto**: in the same ranking, customers are taken until their trailing revenue reaches
  `share` of the total; a customer is in when the revenue ranked before it is still short.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING

from cartera_common.events.changes import Tier

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparisonT as V

TIERS: tuple[Tier, ...] = ("very_high", "high", "medium", "low")
Share = float | Decimal

TRAILING = timedelta(days=365)
DEFAULT_TIER_SHARES: tuple[Share, Share, Share] = (0.05, 0.15, 0.30)
DEFAULT_PARETO_SHARE: Share = 0.8
RFM_LEVELS = 5


@dataclass(frozen=True, slots=True)
class Order:
    amount: Decimal
    occurred_at: datetime
    refunded: Decimal = Decimal(0)
    completed: bool = True
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Facts:
    """What the classification of one customer depends on."""

    revenue_12m: Decimal
    order_count: int = 0
    last_order_at: datetime | None = None
    revenue: Decimal = Decimal(0)

    @property
    def buyer(self) -> bool:
        return self.order_count > 0 and self.last_order_at is not None


@dataclass(frozen=True, slots=True)
class Rfm:
    r: int
    f: int
    m: int


@dataclass(frozen=True, slots=True)
class Classification:
    tier: Tier | None
    rfm: Rfm | None
    pareto: bool


def exact(share: Share) -> Decimal:
    """0.05 means five hundredths, not the binary float nearest to it, so cut counts never depend on float rounding."""
    return share if isinstance(share, Decimal) else Decimal(repr(share))


def cumulative_shares(shares: Sequence[Share]) -> tuple[Decimal, Decimal, Decimal]:
    """The shares of the very high, very high or high, and very high to medium customers."""
    if len(shares) != 3 or any(exact(s) < 0 for s in shares) or sum(exact(s) for s in shares) > 1:
        raise ValueError("tier shares must be three non-negative fractions that add up to at most 1")
    a, b, c = (exact(s) for s in shares)
    return a, a + b, a + b + c


def pareto_fraction(share: Share) -> Decimal:
    value = exact(share)
    if not 0 < value <= 1:
        raise ValueError("the Pareto share must be a fraction above 0 and at most 1")
    return value


def tier_cuts(n: int, shares: Sequence[Share] = DEFAULT_TIER_SHARES) -> tuple[int, int, int]:
    """The last rank of each of the top three tiers among `n` ranked customers."""
    a, b, c = (int((s * n).to_integral_value(ROUND_CEILING)) for s in cumulative_shares(shares))
    return a, b, c


def trailing_revenue(orders: Iterable[Order], *, now: datetime) -> Decimal:
    since = now - TRAILING
    return sum(
        (o.amount - o.refunded for o in orders if o.completed and not o.cancelled and since < o.occurred_at <= now),
        Decimal(0),
    )


def ranked(revenue: Mapping[str, Decimal]) -> list[str]:
    """Customers with positive revenue, best first; equal revenue in `customer_id` order, so runs repeat."""
    return sorted((c for c, r in revenue.items() if r > 0), key=lambda c: (-revenue[c], c))


def tiers(revenue: Mapping[str, Decimal], shares: Sequence[Share] = DEFAULT_TIER_SHARES) -> dict[str, Tier | None]:
    order = ranked(revenue)
    cuts = tier_cuts(len(order), shares)
    out: dict[str, Tier | None] = dict.fromkeys(revenue)
    for rank, customer in enumerate(order, 1):
        out[customer] = TIERS[sum(rank > cut for cut in cuts)]
    return out


def pareto_set(revenue: Mapping[str, Decimal], share: Share = DEFAULT_PARETO_SHARE) -> set[str]:
    """The fewest customers whose revenue makes `share` of the total; nobody when there is no revenue."""
    order = ranked(revenue)
    target = pareto_fraction(share) * sum((revenue[c] for c in order), Decimal(0))
    chosen: set[str] = set()
    running = Decimal(0)
    for customer in order:
        if running >= target:
            break
        chosen.add(customer)
        running += revenue[customer]
    return chosen


def scores(values: Mapping[str, V]) -> dict[str, int]:
    """1 to 5 from the share of customers with a strictly lower value; higher is better."""
    ordered = sorted(values.values())
    n = len(ordered)
    return {k: 1 + RFM_LEVELS * bisect_left(ordered, v) // n for k, v in values.items()}


def rfm(facts: Mapping[str, Facts]) -> dict[str, Rfm]:
    buyers = {k: f for k, f in facts.items() if f.buyer}
    r = scores({k: f.last_order_at for k, f in buyers.items() if f.last_order_at is not None})
    f = scores({k: b.order_count for k, b in buyers.items()})
    m = scores({k: b.revenue for k, b in buyers.items()})
    return {k: Rfm(r[k], f[k], m[k]) for k in buyers}


def classify(
    facts: Mapping[str, Facts],
    *,
    tier_shares: Sequence[Share] = DEFAULT_TIER_SHARES,
    pareto_share: Share = DEFAULT_PARETO_SHARE,
) -> dict[str, Classification]:
    """Every customer of one workspace, classified relative to the others."""
    revenue = {k: f.revenue_12m for k, f in facts.items()}
    tier = tiers(revenue, tier_shares)
    top = pareto_set(revenue, pareto_share)
    scored = rfm(facts)
    return {k: Classification(tier[k], scored.get(k), k in top) for k in facts}
