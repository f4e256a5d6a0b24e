"""Do we want them back? P(reactivation), the return against the cost, and the intensity, pure."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.domain import winback
from scoring.domain.rules import WinbackRules

RULES = WinbackRules()  # 5 emails at 0.05, a call at 6, a 10 % offer, full at twice its cost


def one(p: float, value: float, *, margin: float = math.nan, order: float = 40.0, loses: bool = False) -> tuple:
    d = winback.decide([p], [value], [margin], [order], [loses], RULES)
    return bool(d.worth[0]), winback.intensity_name(int(d.intensity[0])), float(d.expected_return[0]), float(d.cost[0])


def test_without_history_the_probability_is_the_prior() -> None:
    assert winback.p_reactivation(0, 0, [0.3, 0.8], 20).tolist() == [0.3, 0.8]


def test_history_pulls_the_prior_towards_the_workspace_rate() -> None:
    p = winback.p_reactivation(returned=10, lapsed=100, prior=[0.9], strength=20)
    assert p[0] == pytest.approx((10 + 20 * 0.9) / 120)
    lots = winback.p_reactivation(returned=10_000, lapsed=100_000, prior=[0.9], strength=20)
    assert lots[0] == pytest.approx(0.1, abs=1e-3)  # much history: the observed rate


def test_a_valuable_customer_likely_to_return_gets_the_full_sequence() -> None:
    worth, intensity, expected, cost = one(0.4, 500.0)
    assert (worth, intensity) == (True, "full")
    assert expected == pytest.approx(200.0)
    assert cost == pytest.approx(5 * 0.05 + 6.0 + 0.4 * 0.10 * 40)


def test_a_modest_return_gets_emails_only() -> None:
    worth, intensity, expected, cost = one(0.2, 40.0)  # returns 8: covers emails and offer, not twice a call
    assert (worth, intensity) == (True, "light")
    assert cost == pytest.approx(0.25 + 0.2 * 0.10 * 40)
    assert expected > cost


def test_a_return_below_the_cost_is_not_worth_it() -> None:
    worth, intensity, expected, cost = one(0.01, 10.0)
    assert (worth, intensity) == (False, "none") and expected < cost


def test_the_customers_own_margin_turns_revenue_into_profit() -> None:
    _, _, revenue_based, _ = one(0.4, 500.0)
    _, intensity, profit_based, _ = one(0.4, 500.0, margin=0.05)
    assert profit_based == pytest.approx(revenue_based * 0.05) and intensity == "light"  # 10 < 2 x 7.85


def test_a_customer_who_costs_more_than_it_brings_is_never_worth_it() -> None:
    assert one(0.9, 10_000.0, loses=True)[:2] == (False, "none")


chance = st.floats(0, 1)
value = st.floats(0, 1e6)


@given(p=chance, q=chance, v=value, w=value)
def test_worth_is_monotone_in_the_chance_and_the_value(p: float, q: float, v: float, w: float) -> None:
    order = {"none": 0, "light": 1, "full": 2}
    low = one(min(p, q), min(v, w))
    high = one(max(p, q), max(v, w))
    assert order[high[1]] >= order[low[1]]
    assert high[0] >= low[0]


@given(returned=st.integers(0, 10_000), extra=st.integers(0, 10_000), prior=chance, strength=st.floats(0, 1000))
def test_p_reactivation_is_a_probability(returned: int, extra: int, prior: float, strength: float) -> None:
    p = winback.p_reactivation(returned, returned + extra, np.array([prior]), strength)[0]
    assert 0.0 <= p <= 1.0


@given(p=chance, v=value)
def test_worth_means_the_expected_return_exceeds_the_cost(p: float, v: float) -> None:
    worth, intensity, expected, cost = one(p, v)
    assert worth == (intensity != "none")
    if worth:
        assert expected > cost
    if intensity == "full":
        assert expected >= RULES.full_ratio * cost
