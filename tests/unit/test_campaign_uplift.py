"""Uplift against the control group, checked by hand; Thompson sampling over variants, seeded."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.domain.uplift import Group, Tally, t_quantile, thompson, uplift, welch_interval


def test_the_reactivation_uplift_and_its_interval_by_hand() -> None:
    # Treatment 120 of 1,000 came back, control 16 of 200: 12 % against 8 %, four points of uplift.
    # SE = sqrt(0.12 * 0.88 / 1000 + 0.08 * 0.92 / 200) = sqrt(0.0001056 + 0.000368) = 0.0217624
    # 95 %: 0.04 ± 1.959964 * 0.0217624 = 0.04 ± 0.0426534, so (-0.0026534, 0.0826534).
    u = uplift(Group(1000, 120, 0, 0), Group(200, 16, 0, 0))
    assert (u.treatment_rate, u.control_rate) == (0.12, 0.08)
    assert u.rate_uplift == pytest.approx(0.04)
    assert u.rate_interval.low == pytest.approx(-0.0026534, abs=1e-6)
    assert u.rate_interval.high == pytest.approx(0.0826534, abs=1e-6)
    assert 0 in u.rate_interval  # not significant at this size


def test_the_revenue_uplift_uses_welch_s_interval_by_hand() -> None:
    # Equal sizes and spreads make Welch's df a whole number to read from a t table:
    # means 40 and 30, variances 1080 each, n = 6: SE = sqrt(2 * 1080 / 6) = sqrt(360) = 18.973666,
    # df = 360² / (2 * 180² / 5) = 10, t(0.975, 10) = 2.228139, so 10 ± 42.27596.
    treatment = Group.of([10, 10, 10, 70, 70, 70])
    control = Group.of([0, 0, 0, 60, 60, 60])
    assert (treatment.revenue_variance, control.revenue_variance) == (1080, 1080)
    interval = welch_interval(treatment, control)
    assert interval is not None
    assert interval.low == pytest.approx(10 - 42.27596, abs=1e-4)
    assert interval.high == pytest.approx(10 + 42.27596, abs=1e-4)


def test_incremental_revenue_is_the_difference_per_customer_times_the_treated_less_the_offer_cost() -> None:
    treatment = Group.of([0.0] * 80 + [50.0] * 20)  # 100 customers, 1,000 recovered: 10 each
    control = Group.of([0.0] * 18 + [40.0] * 2)  # 20 customers, 80 recovered: 4 each
    u = uplift(treatment, control, offer_cost=150.0)
    assert (u.treatment_revenue_per_customer, u.control_revenue_per_customer) == (10.0, 4.0)
    assert u.incremental_revenue == pytest.approx(600.0)
    assert u.net_incremental_revenue == pytest.approx(450.0)
    assert u.revenue_interval is not None and u.net_interval is not None
    assert u.net_interval.low == pytest.approx(u.revenue_interval.low * 100 - 150)
    assert (treatment.reactivated, control.reactivated) == (20, 2)


@pytest.mark.parametrize(
    ("df", "table"), [(1, 12.7062), (2, 4.3027), (5, 2.5706), (10, 2.2281), (30, 2.0423), (1e7, 1.9600)]
)
def test_the_t_quantile_matches_the_table(df: float, table: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(table, abs=1e-4)


def test_too_few_customers_give_no_revenue_interval_and_none_at_all_is_refused() -> None:
    assert welch_interval(Group.of([5.0]), Group.of([0.0, 1.0])) is None
    with pytest.raises(ValueError, match="both"):
        uplift(Group.of([1.0]), Group.of([]))


def test_identical_revenue_gives_a_point_interval() -> None:
    interval = welch_interval(Group.of([5.0, 5.0]), Group.of([2.0, 2.0, 2.0]))
    assert interval is not None and (interval.low, interval.high) == (3.0, 3.0)


@given(st.integers(1, 500), st.integers(1, 500), st.floats(0, 1), st.floats(0, 1))
def test_the_rate_interval_holds_the_estimate_and_narrows_by_half_with_four_times_the_customers(
    n: int, m: int, p: float, q: float
) -> None:
    small = uplift(Group(n, round(p * n), 0, 0), Group(m, round(q * m), 0, 0))
    large = uplift(Group(4 * n, 4 * round(p * n), 0, 0), Group(4 * m, 4 * round(q * m), 0, 0))
    assert small.rate_uplift in small.rate_interval
    width = small.rate_interval.high - small.rate_interval.low
    assert large.rate_interval.high - large.rate_interval.low == pytest.approx(width / 2, abs=1e-12)


def test_thompson_sampling_sends_more_of_the_variant_that_brings_more_customers_back() -> None:
    arms = {"default": Tally(sent=1000, reactivated=50), "warmer": Tally(sent=1000, reactivated=80)}
    rng = random.Random(7)
    picks = [thompson(arms, rng) for _ in range(2000)]
    assert picks.count("warmer") / len(picks) > 0.95


def test_thompson_sampling_still_tries_variants_it_knows_little_about() -> None:
    arms = {"default": Tally(0, 0), "new": Tally(0, 0)}
    rng = random.Random(11)
    share = [thompson(arms, rng) for _ in range(2000)].count("new") / 2000
    assert 0.45 < share < 0.55


def test_thompson_sampling_is_reproducible_with_a_seed_whatever_the_order_of_the_arms() -> None:
    arms = {"a": Tally(40, 4), "b": Tally(40, 5), "c": Tally(10, 1)}
    backwards = dict(reversed(arms.items()))
    one, other = random.Random(3), random.Random(3)
    first = [thompson(arms, one) for _ in range(200)]
    again = [thompson(backwards, other) for _ in range(200)]
    assert first == again
    with pytest.raises(ValueError, match="no variants"):
        thompson({}, random.Random(0))


def test_group_statistics_come_from_sums_a_report_can_take_in_sql() -> None:
    g = Group(customers=4, reactivated=2, revenue=150.0, revenue_squares=12_500.0)  # revenues 0, 0, 50, 100
    assert (g.rate, g.revenue_per_customer) == (0.5, 37.5)
    assert g.revenue_variance == pytest.approx(6875 / 3)
    assert math.isnan(Group(1, 0, 0, 0).revenue_variance)
