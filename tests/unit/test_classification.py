"""The portfolio's relative classification rules: tiers, RFM quintiles, the Pareto set, trailing revenue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmenter.domain.classification import (
    TIERS,
    Facts,
    Order,
    Rfm,
    classify,
    pareto_set,
    ranked,
    scores,
    tier_cuts,
    tiers,
    trailing_revenue,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)

money = st.decimals(min_value=-50, max_value=10_000, places=2, allow_nan=False, allow_infinity=False)
# Few distinct values, so ties are common.
portfolios = st.dictionaries(st.text("abcdefg", min_size=1, max_size=3), money | st.sampled_from([Decimal(5)]))
shares = st.tuples(*[st.decimals(min_value=0, max_value=Decimal("0.33"), places=2)] * 3)
pareto_shares = st.decimals(min_value=Decimal("0.01"), max_value=1, places=2)


def test_a_hundred_customers_split_five_fifteen_thirty_fifty() -> None:
    revenue = {f"c{i:03}": Decimal(i + 1) for i in range(100)}
    got = tiers(revenue)
    assert [sum(1 for t in got.values() if t == tier) for tier in TIERS] == [5, 15, 30, 50]
    assert got["c099"] == "very_high" and got["c094"] == "high" and got["c000"] == "low"


def test_tier_cuts_are_decimal_exact_and_rounded_up() -> None:
    # 0.05 + 0.15 + 0.30 in binary floats is 0.5000000000000001; ceil(0.5 * 10) must stay 5.
    assert tier_cuts(10) == (1, 2, 5)
    assert tier_cuts(1) == (1, 1, 1)
    assert tier_cuts(0) == (0, 0, 0)
    assert tier_cuts(7, (0.1, 0.2, 0.3)) == (1, 3, 5)


def test_shares_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="tier shares"):
        tier_cuts(10, (0.5, 0.4, 0.2))
    with pytest.raises(ValueError, match="tier shares"):
        tier_cuts(10, (0.5, -0.1, 0.2))
    with pytest.raises(ValueError, match="Pareto"):
        pareto_set({"a": Decimal(1)}, 0)


def test_equal_revenue_is_ranked_by_customer_id() -> None:
    assert ranked({"b": Decimal(3), "a": Decimal(3), "c": Decimal(4), "z": Decimal(0)}) == ["c", "a", "b"]


def test_customers_without_positive_revenue_have_no_tier_and_are_not_pareto() -> None:
    revenue = {"a": Decimal(0), "b": Decimal(-3), "c": Decimal(10)}
    assert tiers(revenue) == {"a": None, "b": None, "c": "very_high"}
    assert pareto_set(revenue) == {"c"}
    assert pareto_set({"a": Decimal(0), "b": Decimal(-1)}) == set()


def test_pareto_takes_customers_until_the_share_is_reached() -> None:
    revenue = {"a": Decimal(50), "b": Decimal(30), "c": Decimal(10), "d": Decimal(10)}
    assert pareto_set(revenue, 0.8) == {"a", "b"}  # exactly 80: reached, so c is not needed
    assert pareto_set(revenue, Decimal("0.81")) == {"a", "b", "c"}
    assert pareto_set(revenue, 1) == {"a", "b", "c", "d"}


def test_scores_rank_quintiles_with_the_best_at_five() -> None:
    assert scores({str(i): i for i in range(10)}) == {str(i): 1 + i // 2 for i in range(10)}
    assert scores({"only": 7}) == {"only": 1}
    assert scores({"a": 1, "b": 1, "c": 1, "d": 2}) == {"a": 1, "b": 1, "c": 1, "d": 4}


def test_rfm_scores_recency_frequency_and_value_of_buyers_only() -> None:
    day = timedelta(days=1)
    facts = {
        f"c{i}": Facts(Decimal(0), order_count=i, last_order_at=NOW - (10 - i) * day, revenue=Decimal(100 - i))
        for i in range(1, 6)
    } | {"prospect": Facts(Decimal(0))}
    got = classify(facts)
    assert got["prospect"].rfm is None
    assert [got[f"c{i}"].rfm for i in range(1, 6)] == [Rfm(i, i, 6 - i) for i in range(1, 6)]


def test_trailing_revenue_counts_net_completed_orders_in_the_last_365_days() -> None:
    year = timedelta(days=365)
    orders = [
        Order(Decimal(10), NOW),  # now itself is inside
        Order(Decimal(20), NOW - year),  # exactly a year ago is outside
        Order(Decimal(30), NOW - year + timedelta(seconds=1), refunded=Decimal(5)),
        Order(Decimal(40), NOW - timedelta(days=1), cancelled=True),
        Order(Decimal(50), NOW - timedelta(days=1), completed=False),
        Order(Decimal(60), NOW + timedelta(seconds=1)),  # not yet, as of now
    ]
    assert trailing_revenue(orders, now=NOW) == Decimal(35)


@given(portfolios, shares)
def test_tiers_follow_the_shares_and_the_ranking(revenue: dict[str, Decimal], split: tuple[Decimal, ...]) -> None:
    got = tiers(revenue, split)
    order = ranked(revenue)
    cuts = (0, *tier_cuts(len(order), split), len(order))
    counts = [sum(1 for t in got.values() if t == tier) for tier in TIERS]
    assert counts == [cuts[i + 1] - cuts[i] for i in range(4)]
    assert all((got[c] is None) == (r <= 0) for c, r in revenue.items())
    # Down the ranking the tier never gets better.
    assert [TIERS.index(got[c]) for c in order] == sorted(TIERS.index(got[c]) for c in order)


@given(portfolios, pareto_shares)
def test_the_pareto_set_covers_the_share_and_is_minimal(revenue: dict[str, Decimal], share: Decimal) -> None:
    chosen = pareto_set(revenue, share)
    total = sum((r for r in revenue.values() if r > 0), Decimal(0))
    covered = sum((revenue[c] for c in chosen), Decimal(0))
    if total == 0:
        assert chosen == set()
        return
    assert covered >= share * total
    assert covered - min(revenue[c] for c in chosen) < share * total
    # No set of fewer customers reaches the share either: the best len-1 customers fall short.
    best = sorted((r for r in revenue.values() if r > 0), reverse=True)
    assert sum(best[: len(chosen) - 1], Decimal(0)) < share * total


@given(st.dictionaries(st.text("abc", min_size=1, max_size=4), st.integers(0, 6)))
def test_equal_values_score_alike_within_one_to_five(values: dict[str, int]) -> None:
    got = scores(values)
    assert set(got.values()) <= {1, 2, 3, 4, 5}
    for a in values:
        for b in values:
            if values[a] == values[b]:
                assert got[a] == got[b]
            elif values[a] < values[b]:
                assert got[a] <= got[b]
    if values:
        assert got[min(values, key=values.__getitem__)] == 1
        best = max(values, key=values.__getitem__)
        beaten = sum(1 for v in values.values() if v < values[best])
        assert (got[best] == 5) == (5 * beaten >= 4 * len(values))


@given(st.lists(st.integers(), min_size=1, max_size=60, unique=True))
def test_distinct_values_fill_each_quintile_evenly(values: list[int]) -> None:
    got = scores({str(v): v for v in values})
    n = len(values)
    for level in range(1, 6):
        expected = -(-level * n // 5) - (-(-(level - 1) * n // 5))
        assert sum(1 for s in got.values() if s == level) == expected
