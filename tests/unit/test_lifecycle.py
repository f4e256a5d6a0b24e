"""Lifecycle rules: a status is a pure function of what the customer did, the policy and `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmenter.domain.lifecycle import Facts, evaluate
from segmenter.domain.policy import Override, Policy, Suspension

T0 = datetime(2025, 1, 1, tzinfo=UTC)
FIXED = Policy(suspension=Suspension(mode="fixed", days=180), lost_after_days=365, new_days=90, reactivated_days=90)
ADAPTIVE = Policy(suspension=Suspension(mode="adaptive", k=3, floor_days=60, days=180))


def days(n: float) -> timedelta:
    return timedelta(days=n)


def buyer(*order_days: float, **extra: object) -> Facts:
    times = tuple(T0 + days(d) for d in sorted(order_days))
    return Facts(first_seen_at=T0, order_times=times, first_order_at=times[0] if times else None, **extra)  # type: ignore[arg-type]


def status(facts: Facts, policy: Policy, at_day: float) -> str:
    return evaluate(facts, policy, T0 + days(at_day)).status


def test_a_customer_who_never_showed_interest_is_a_prospect() -> None:
    d = evaluate(Facts(first_seen_at=T0), FIXED, T0 + days(400))
    assert (d.status, d.since, d.due_at) == ("prospect", T0, None)


def test_a_lead_demo_trial_or_quote_makes_a_potential_customer() -> None:
    d = evaluate(Facts(first_seen_at=T0, interest_at=T0 + days(3), interest_kind="demo"), FIXED, T0 + days(10))
    assert (d.status, d.since) == ("potential", T0 + days(3))
    assert "demo" in d.reason


def test_a_first_order_is_new_then_active_then_lapsed_then_lost_as_time_passes() -> None:
    facts = buyer(0)
    assert status(facts, FIXED, 1) == "new"
    assert status(facts, FIXED, 89) == "new"
    assert status(facts, FIXED, 90) == "active"
    assert status(facts, FIXED, 179) == "active"
    assert status(facts, FIXED, 180) == "lapsed"
    assert status(facts, FIXED, 180 + 364) == "lapsed"
    assert status(facts, FIXED, 180 + 365) == "lost"


def test_the_due_time_is_the_next_moment_time_alone_changes_the_status() -> None:
    facts = buyer(0)
    new = evaluate(facts, FIXED, T0 + days(1))
    assert new.due_at == T0 + days(90)
    active = evaluate(facts, FIXED, T0 + days(100))
    assert active.due_at == T0 + days(180)
    lapsed = evaluate(facts, FIXED, T0 + days(200))
    assert (lapsed.since, lapsed.due_at) == (T0 + days(180), T0 + days(545))
    assert evaluate(facts, FIXED, T0 + days(600)).due_at is None


def test_a_new_customer_can_lapse_before_the_new_period_ends() -> None:
    short = Policy(suspension=Suspension(mode="fixed", days=30), new_days=90)
    d = evaluate(buyer(0), short, T0 + days(10))
    assert (d.status, d.due_at) == ("new", T0 + days(30))
    assert status(buyer(0), short, 31) == "lapsed"


def test_an_order_after_a_lapse_reactivates_for_the_reactivated_period() -> None:
    facts = buyer(0, 10, 300)
    d = evaluate(facts, FIXED, T0 + days(301))
    assert (d.status, d.since) == ("reactivated", T0 + days(300))
    assert "290 days" in d.reason
    assert status(facts, FIXED, 389) == "reactivated"
    assert status(facts, FIXED, 390) == "active"


def test_a_late_order_that_arrives_after_the_customer_lapsed_lands_in_the_right_place() -> None:
    # Orders on day 0 and day 150; the second arrives late. On day 200 the customer is active, not lapsed.
    assert status(buyer(0), FIXED, 200) == "lapsed"
    assert status(buyer(0, 150), FIXED, 200) == "active"


def test_adaptive_suspension_follows_the_customers_own_rhythm_above_the_floor() -> None:
    weekly = buyer(*range(0, 70, 7))  # last order day 63, usual gap 7 days -> 3x = 21 days, floor 60
    assert evaluate(weekly, ADAPTIVE, T0 + days(64)).usual_gap_days == pytest.approx(7)
    assert status(weekly, ADAPTIVE, 63 + 59) == "active"
    assert status(weekly, ADAPTIVE, 63 + 60) == "lapsed"
    monthly = buyer(*range(0, 300, 30))  # last day 270, usual 30 -> 90 days
    assert status(monthly, ADAPTIVE, 270 + 89) == "active"
    assert status(monthly, ADAPTIVE, 270 + 90) == "lapsed"


def test_adaptive_suspension_uses_the_fixed_days_for_a_one_order_customer() -> None:
    assert status(buyer(0), ADAPTIVE, 179) == "active"
    assert status(buyer(0), ADAPTIVE, 180) == "lapsed"


def test_a_single_long_gap_does_not_stretch_the_usual_rhythm() -> None:
    # Monthly for a year, one long break, then monthly again: the usual gap stays a month.
    orders = [*range(0, 360, 30), *range(600, 700, 30)]
    d = evaluate(buyer(*orders), ADAPTIVE, T0 + days(691))
    assert d.usual_gap_days == pytest.approx(30)
    assert evaluate(buyer(*orders[:13]), ADAPTIVE, T0 + days(601)).status == "reactivated"


def test_probability_mode_lapses_when_p_alive_falls_below_the_threshold() -> None:
    prob = Policy(suspension=Suspension(mode="probability", threshold=0.3, days=365))
    facts = buyer(0, 30, p_alive=0.2, p_alive_at=T0 + days(60))
    d = evaluate(facts, prob, T0 + days(61))
    assert (d.status, d.since) == ("lapsed", T0 + days(60))
    assert "0.20" in d.reason
    assert status(buyer(0, 30, p_alive=0.6, p_alive_at=T0 + days(60)), prob, 61) == "new"


def test_probability_mode_ignores_a_score_older_than_the_last_order() -> None:
    prob = Policy(suspension=Suspension(mode="probability", threshold=0.3, days=365))
    facts = buyer(0, 100, p_alive=0.1, p_alive_at=T0 + days(50))
    assert status(facts, prob, 120) == "active"
    assert status(facts, prob, 100 + 365) == "lapsed"  # falls back to the fixed days


def test_a_winback_that_ends_without_response_makes_the_customer_lost() -> None:
    facts = buyer(0, winback_ended_at=T0 + days(220))
    d = evaluate(facts, FIXED, T0 + days(221))
    assert (d.status, d.since, d.due_at) == ("lost", T0 + days(220), None)
    assert status(facts, FIXED, 219) == "lapsed"


def test_an_order_after_a_lost_winback_reactivates() -> None:
    facts = buyer(0, 300, winback_ended_at=T0 + days(220))
    assert status(facts, FIXED, 301) == "reactivated"


def test_overrides_change_the_suspension_point_for_an_industry_prefix_or_a_segment() -> None:
    policy = Policy(
        suspension=Suspension(mode="fixed", days=180),
        overrides=[
            Override(industry="56", suspension=Suspension(mode="fixed", days=60)),
            Override(segment="wholesale", lost_after_days=30),
        ],
    )
    pizzeria = buyer(0, industry="56.10")
    florist = buyer(0, industry="47.76")
    assert status(pizzeria, policy, 61) == "lapsed"
    assert status(florist, policy, 61) == "new"
    assert status(buyer(0, segment="wholesale"), policy, 180 + 31) == "lost"


def test_an_override_must_match_something() -> None:
    with pytest.raises(ValueError, match="industry or a segment"):
        Override(suspension=Suspension(days=10))


def test_frequency_classes_follow_the_usual_gap() -> None:
    assert evaluate(buyer(0, 7, 14), FIXED, T0 + days(15)).frequency == "frequent"
    assert evaluate(buyer(0, 60, 120), FIXED, T0 + days(121)).frequency == "habitual"
    assert evaluate(buyer(0, 100, 200), FIXED, T0 + days(201)).frequency == "occasional"
    assert evaluate(buyer(0), FIXED, T0 + days(1)).frequency == "occasional"


order_days = st.lists(st.integers(min_value=0, max_value=1500), min_size=1, max_size=30)


@given(order_days, st.integers(min_value=0, max_value=2500), st.sampled_from([FIXED, ADAPTIVE]))
def test_the_status_does_not_depend_on_the_order_the_orders_arrived_in(
    orders: list[int], at: int, policy: Policy
) -> None:
    a = evaluate(buyer(*orders), policy, T0 + days(at))
    b = evaluate(buyer(*reversed(orders)), policy, T0 + days(at))
    assert a == b


@given(order_days, st.integers(min_value=0, max_value=2500), st.sampled_from([FIXED, ADAPTIVE]))
def test_nothing_changes_before_the_due_time_and_something_does_at_it(
    orders: list[int], at: int, policy: Policy
) -> None:
    facts = buyer(*orders)
    now = T0 + days(max(at, max(orders)))
    d = evaluate(facts, policy, now)
    assert d.since <= now
    if d.due_at is None:
        assert d.status == "lost" and evaluate(facts, policy, now + days(5000)).status == "lost"
        return
    assert d.due_at > now
    just_before = evaluate(facts, policy, d.due_at - timedelta(seconds=1))
    assert (just_before.status, just_before.since) == (d.status, d.since)
    assert evaluate(facts, policy, d.due_at).status != d.status


@given(order_days)
def test_an_order_never_leaves_a_customer_lapsed_or_lost_on_its_day(orders: list[int]) -> None:
    now = T0 + days(max(orders))
    assert evaluate(buyer(*orders), FIXED, now).status in ("new", "active", "reactivated")
