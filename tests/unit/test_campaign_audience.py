"""Who enters which ready-made campaign, and what the ready-made sequences are."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.domain.audience import choose, place
from campaigns.domain.model import MAX_STEPS, MIN_STEPS, Audience, WinbackDecision
from campaigns.domain.sequences import HIGH_VALUE, NURTURE, READY_MADE, STANDARD, UNHAPPY, campaign_id
from cartera_common.events.changes import STATUSES, CustomerSnapshot


def snap(**fields: Any) -> CustomerSnapshot:
    return CustomerSnapshot.model_validate({"status": "lapsed", "responsiveness": "responder", **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "winback-standard"),
        ({"tier": "medium"}, "winback-standard"),
        ({"tier": None}, "winback-standard"),  # no revenue in the last 12 months is not evidence of low value
        ({"status": "lost"}, "winback-standard"),  # lost customers come back around after the cool-off
        ({"tier": "very_high"}, "winback-high-value"),
        ({"tier": "high"}, "winback-high-value"),
        ({"tier": "medium", "pareto": True}, "winback-high-value"),
        ({"tier": "high", "consent": {"phone": False}}, "winback-standard"),  # no call without phone consent
        ({"unhappy": True, "leave_reasons": ["complaint:damaged"]}, "winback-unhappy"),
        ({"unhappy": True, "tier": "low"}, "winback-unhappy"),  # the problem is acknowledged whatever the value
        ({"unhappy": True, "tier": "very_high"}, "winback-high-value"),  # the call asks why they left
        ({"tier": "low"}, "winback-light-touch"),
        ({"responsiveness": "non_responder"}, "winback-standard-improbable"),
        ({"responsiveness": "unknown"}, "winback-standard"),  # never contacted is not never answered
        ({"responsiveness": "non_responder", "tier": "high"}, "winback-high-value-improbable"),
        ({"responsiveness": "non_responder", "tier": "low"}, "winback-light-touch-improbable"),
    ],
)
def test_the_ready_made_route(fields: dict[str, Any], expected: str) -> None:
    assert place(snap(**fields)).campaign_id == expected


@pytest.mark.parametrize("status", [s for s in STATUSES if s not in ("lapsed", "lost")])
def test_only_lapsed_and_lost_customers_are_won_back(status: str) -> None:
    assert place(snap(status=status)).campaign_id is None


def test_nobody_enters_who_withdrew_all_consent_or_costs_more_than_they_bring() -> None:
    assert place(snap(consent={"all": False})).reason == "consent withdrawn"
    assert place(snap(unprofitable=True)).reason == "costs more than they bring"
    assert place(snap(unprofitable=False)).campaign_id == STANDARD.id


def test_the_scoring_decision_gates_when_it_is_there() -> None:
    assert place(snap(tier="very_high"), WinbackDecision(worth=False)).campaign_id is None
    assert place(snap(), WinbackDecision(worth=True, intensity="none")).campaign_id is None
    assert place(snap(tier="very_high"), WinbackDecision(worth=True, intensity="light")).kind == "light_touch"
    assert place(snap(tier="very_high"), WinbackDecision(worth=True, intensity="full")).kind == "high_value"


def test_a_customer_who_answered_without_buying_is_nurtured_without_an_improbable_twin() -> None:
    placed = place(snap(responsiveness="non_responder"), responded_without_buying=True)
    assert (placed.campaign_id, placed.kind) == ("nurture", "nurture")


def test_the_reason_names_the_recorded_leave_reasons() -> None:
    placed = place(snap(unhappy=True, leave_reasons=["complaint:damaged", "delivery_late:carrier"]))
    assert placed.reason == "left unhappy: complaint:damaged, delivery_late:carrier"


@given(
    st.sampled_from(STATUSES),
    st.sampled_from([None, "very_high", "high", "medium", "low"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["responder", "non_responder", "unknown"]),
)
def test_every_placement_is_a_shipped_campaign_and_probable_and_improbable_never_mix(
    status: str, tier: str | None, pareto: bool, unhappy: bool, responsiveness: str
) -> None:
    placed = place(snap(status=status, tier=tier, pareto=pareto, unhappy=unhappy, responsiveness=responsiveness))
    if placed.campaign_id is None:
        assert status not in ("lapsed", "lost")
        return
    assert placed.campaign_id in READY_MADE
    assert placed.campaign_id.endswith("-improbable") == (responsiveness == "non_responder")


def test_a_workspace_campaign_that_matches_wins_over_the_route_by_priority() -> None:
    spring = STANDARD.model_copy(
        update={"id": "spring-florists", "priority": 50, "audience": Audience(industries=("47.76",))}
    )
    florist, baker = snap(industry="47.76"), snap(industry="10.71")
    enabled = [*READY_MADE.values(), spring]
    assert choose(florist, enabled) == spring
    assert choose(baker, enabled) == STANDARD
    assert choose(snap(consent={"all": False}, industry="47.76"), enabled) is None
    assert choose(baker, [spring]) is None  # the routed campaign is not enabled here


def test_the_shipped_sequences_have_four_to_seven_steps_and_their_own_ids() -> None:
    for cid, campaign in READY_MADE.items():
        assert cid == campaign.id
        assert MIN_STEPS <= len(campaign.steps) <= MAX_STEPS
    assert campaign_id("nurture", improbable=True) == NURTURE.id


def test_the_standard_sequence_escalates_from_a_personal_message_to_a_plain_reconnect() -> None:
    steps = STANDARD.steps
    assert [s.template_id for s in steps] == [
        "standard.personal",
        "standard.whats-new",
        "standard.incentive",
        "standard.ten-off",
        "standard.fifteen-off",
        "standard.reconnect",
    ]
    assert [(s.offer.kind, s.offer.percent) for s in steps] == [
        ("none", None),
        ("none", None),
        ("incentive", None),
        ("percent_off", 10),
        ("percent_off", 15),
        ("none", None),
    ]
    assert [s.delay_days for s in steps] == [0, 7, 7, 10, 10, 14]
    assert all(s.call_to_action for s in steps)


def test_the_special_sequences_open_as_the_issue_says() -> None:
    assert UNHAPPY.steps[0].template_id == "unhappy.acknowledge" and UNHAPPY.steps[0].offer.kind == "none"
    assert HIGH_VALUE.steps[0].channel == "call_task"
    assert all(s.offer.kind == "none" for s in READY_MADE["winback-light-touch"].steps)
    assert sum(s.delay_days for s in NURTURE.steps) > sum(s.delay_days for s in STANDARD.steps)
    assert NURTURE.exit.on_response == "continue"
