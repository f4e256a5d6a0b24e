"""Lead score, channel bands and look-alikes, pure."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from scoring.domain import leads
from scoring.domain.rules import ENGAGEMENT_KINDS, Band, FitRule, LeadRules, LookalikeRules

RULES = LeadRules(
    fit_rules=[
        FitRule(field="industry", values=["56"], match="prefix", points=15),
        FitRule(field="company_size", values=["11-50", "51-200"], points=10),
        FitRule(field="region", values=["Madrid"], points=5),
        FitRule(field="age_band", values=["25-34"], points=8),
        FitRule(field="country", values=["XX"], points=-20),
    ]
)


def raw(kinds: list[str], ages: list[float], counts: list[float] | None = None, rules: LeadRules = RULES) -> float:
    n = len(kinds)
    return float(leads.engagement_raw([0] * n, kinds, ages, counts or [1.0] * n, 1, rules)[0])


def test_fit_adds_the_points_of_every_matching_rule_case_insensitively() -> None:
    profile = {"industry": "56.10", "company_size": "11-50", "region": "madrid", "age_band": "25-34"}
    assert leads.fit(profile, RULES) == 30  # 15 + 10 + 5 + 8 = 38, capped at fit_max
    assert leads.fit({"industry": "47.11", "region": "MADRID "}, RULES) == 5


def test_negative_rules_lower_the_fit_but_never_below_zero() -> None:
    assert leads.fit({"industry": "5610", "country": "XX"}, RULES) == 0
    assert leads.fit({}, RULES) == 0


def test_an_exact_rule_does_not_match_a_prefix() -> None:
    rules = LeadRules(fit_rules=[FitRule(field="industry", values=["56"], points=10)])
    assert leads.fit({"industry": "56.10"}, rules) == 0 and leads.fit({"industry": "56"}, rules) == 10


def test_an_event_counts_half_as_much_after_one_half_life() -> None:
    assert raw(["demo"], [30.0]) == pytest.approx(15 / 2)
    assert raw(["demo", "demo"], [0.0, 60.0]) == pytest.approx(15 + 15 / 4)
    assert raw(["opened"], [0.0], [3.0]) == pytest.approx(3.0)
    assert raw(["demo"], [-2.0]) == pytest.approx(15)  # dated in the future: today's


def test_engagement_points_saturate_at_the_cap() -> None:
    points = leads.engagement_points([0.0, 20.0, 1e9], RULES)
    assert points[0] == 0 and points[1] == pytest.approx(50 * (1 - np.exp(-1)))
    assert points[2] == pytest.approx(50)


def test_channels_follow_the_bands_highest_first() -> None:
    assert [leads.channel(s, RULES) for s in (95, 70, 69.9, 50, 30, 0)] == [
        "visit", "visit", "call", "call", "personal_email", "email",
    ]  # fmt: skip


def test_bands_given_in_any_order_are_kept_highest_first_and_the_lowest_catches_the_rest() -> None:
    rules = LeadRules(bands=[Band(channel="email", min_score=10), Band(channel="call", min_score=60)])
    assert [b.channel for b in rules.bands] == ["call", "email"]
    assert leads.channel(3, rules) == "email"


def test_unknown_engagement_kinds_are_refused_in_the_rules() -> None:
    with pytest.raises(ValidationError):
        LeadRules.model_validate({"weights": {"tweet": 3}})


TOP = [
    {"industry": "56.10", "company_size": "11-50", "region": "Madrid"},
    {"industry": "56.21", "company_size": "11-50", "region": "Madrid"},
    {"industry": "56.30", "company_size": "1-10", "region": "Sevilla"},
    {"industry": "47.11", "company_size": "11-50", "region": "Madrid"},
    {"industry": None, "company_size": None, "region": "Madrid"},
]


def test_the_top_profile_counts_shares_relative_to_the_commonest_value() -> None:
    top = leads.top_profile(TOP, LookalikeRules())
    assert top.customers == 5
    assert top.shares["industry"] == {"56": 1.0, "47": 1 / 3}  # sector codes compared by their first two characters
    assert top.shares["company_size"] == {"11-50": 1.0, "1-10": 1 / 3}
    assert top.shares["region"] == {"madrid": 1.0, "sevilla": 0.25}


def test_similarity_weights_each_shared_attribute() -> None:
    top = leads.top_profile(TOP, LookalikeRules())
    rules = LookalikeRules()
    assert leads.similarity({"industry": "56.99", "company_size": "11-50", "region": "Madrid"}, top, rules) == 1.0
    assert leads.similarity({"industry": "5630"}, top, rules) == pytest.approx(0.5)
    partly = {"industry": "47.19", "company_size": "1-10", "region": "Sevilla"}
    assert leads.similarity(partly, top, rules) == pytest.approx(0.5 / 3 + 0.25 / 3 + 0.25 / 4)
    assert leads.similarity({"industry": "01"}, top, rules) == 0.0


def test_too_few_top_customers_give_no_lookalike_points() -> None:
    top = leads.top_profile(TOP[:4], LookalikeRules())
    assert leads.similarity({"industry": "56"}, top, LookalikeRules()) == 0.0


def test_the_top_profile_survives_its_json_form() -> None:
    top = leads.top_profile(TOP, LookalikeRules())
    assert leads.TopProfile.from_json(top.to_json()) == top
    assert leads.TopProfile.from_json(None) == leads.TopProfile()


def test_a_lookalike_outranks_an_equally_engaged_stranger() -> None:
    top = leads.top_profile(TOP, LookalikeRules())
    profiles = [{"industry": "01.11", "region": "Lugo"}, {"industry": "56.10", "region": "Madrid"}]
    scored = leads.score_leads(profiles, [10.0, 10.0], top, LeadRules())
    assert scored.score[1] > scored.score[0]
    assert scored.score[1] - scored.score[0] == pytest.approx(20 * scored.similarity[1])


kinds = st.sampled_from(ENGAGEMENT_KINDS)
ages = st.floats(0, 3650)


@given(events=st.lists(st.tuples(kinds, ages), max_size=30), extra=st.tuples(kinds, ages))
def test_more_engagement_never_lowers_the_score(events: list[tuple[str, float]], extra: tuple[str, float]) -> None:
    before = raw([k for k, _ in events], [a for _, a in events])
    after = raw([k for k, _ in [*events, extra]], [a for _, a in [*events, extra]])
    assert after >= before
    assert leads.engagement_points([after], RULES)[0] >= leads.engagement_points([before], RULES)[0]


@given(kind=kinds, age=ages, later=st.floats(0, 3650))
def test_an_older_event_never_counts_more(kind: str, age: float, later: float) -> None:
    assert raw([kind], [age + later]) <= raw([kind], [age])


@given(half_life=st.floats(0.1, 3650), age=ages)
def test_decay_is_a_weight_in_zero_one(half_life: float, age: float) -> None:
    w = leads.decay([age], half_life)[0]
    assert 0.0 <= w <= 1.0


@given(scores=st.lists(st.floats(0, 100), min_size=2, max_size=2))
def test_a_higher_score_never_gets_a_lesser_channel(scores: list[float]) -> None:
    rank = {"email": 0, "personal_email": 1, "call": 2, "visit": 3}
    low, high = sorted(scores)
    assert rank[leads.channel(high, RULES)] >= rank[leads.channel(low, RULES)]


@given(raw_points=st.lists(st.floats(0, 1e6), min_size=1, max_size=20))
def test_the_score_stays_within_the_caps(raw_points: list[float]) -> None:
    top = leads.top_profile(TOP, LookalikeRules())
    profiles = [{"industry": "56.10", "company_size": "11-50", "region": "Madrid"}] * len(raw_points)
    scored = leads.score_leads(profiles, raw_points, top, RULES)
    assert np.all(scored.score >= 0) and np.all(scored.score <= 30 + 50 + 20 + 1e-9)
