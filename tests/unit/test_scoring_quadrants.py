"""Retain / develop / maintain / abandon: the thresholds and the placement, pure."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from scoring.domain import quadrants
from scoring.domain.quadrants import Thresholds
from scoring.domain.rules import QuadrantRules

T = Thresholds(value=100.0, potential=200.0)


def names(value: list[float], cost: list[float], potential: list[float], t: Thresholds = T) -> list[str | None]:
    placed = quadrants.place(value, cost, potential, t)
    return [quadrants.name(int(c)) for c in placed.quadrant]


def test_each_quadrant_follows_value_now_and_potential() -> None:
    assert names([150, 50, 150, 50], [0, 0, 0, 0], [300, 300, 100, 100]) == ["retain", "develop", "maintain", "abandon"]


def test_a_customer_who_costs_more_than_it_brings_is_abandoned_whatever_its_potential() -> None:
    placed = quadrants.place([-20.0], [80.0], [10_000.0], T)
    assert quadrants.name(int(placed.quadrant[0])) == "abandon"
    assert placed.unprofitable.tolist() == [True]
    assert quadrants.reason(int(placed.quadrant[0]), True) == "costs more than it brings"


def test_a_loss_without_a_cost_to_serve_is_not_called_unprofitable() -> None:
    # Negative margins on their own (refunds, a loss leader) are low value, not cost to serve.
    placed = quadrants.place([-5.0], [0.0], [500.0], T)
    assert not placed.unprofitable[0] and quadrants.name(int(placed.quadrant[0])) == "develop"


def test_without_a_potential_the_quadrant_is_unknown_unless_the_customer_loses_money() -> None:
    assert names([150, -10], [0, 30], [math.nan, math.nan]) == [None, "abandon"]


def test_nothing_brought_is_never_high_value_even_with_a_zero_threshold() -> None:
    assert names([0.0, 0.01], [0, 0], [10, 10], Thresholds(0.0, 0.0)) == ["develop", "retain"]


def test_thresholds_are_quantiles_of_the_positive_values() -> None:
    t = quadrants.thresholds([0, 0, 0, 10, 20, 30], [np.nan, 5, 15, 25, 0, -3], QuadrantRules())
    assert t == Thresholds(value=20.0, potential=15.0)  # the dormant zeros and unknown values do not count


def test_fixed_thresholds_override_the_quantiles() -> None:
    rules = QuadrantRules(value_threshold=500, potential_quantile=0.9)
    t = quadrants.thresholds([10, 20], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], rules)
    assert t.value == 500 and math.isclose(t.potential, 9.1)


def test_an_empty_portfolio_has_zero_thresholds() -> None:
    assert quadrants.thresholds([], [], QuadrantRules()) == Thresholds(0.0, 0.0)


money = st.floats(-1e6, 1e6, allow_nan=False)


@given(value=money, more=st.floats(0, 1e6), cost=st.floats(0, 1e5), potential=money, extra=st.floats(0, 1e6))
def test_more_value_or_potential_never_moves_a_customer_down(
    value: float, more: float, cost: float, potential: float, extra: float
) -> None:
    """Ranks: abandon < maintain, develop < retain; raising either axis never lowers the rank."""
    rank = {"abandon": 0, "maintain": 1, "develop": 1, "retain": 2}
    before = names([value], [cost], [potential])[0]
    richer = names([value + more], [cost], [potential])[0]
    promising = names([value], [cost], [potential + extra])[0]
    assert before is not None and richer is not None and promising is not None
    if not (cost > 0 and value + more < 0):
        assert rank[richer] >= rank[before]
    assert rank[promising] >= rank[before]
