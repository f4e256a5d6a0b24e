"""The enrolment state machine: every transition, exits at any step, the control group, never a message twice."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from campaigns.domain.effects import (
    ENDED,
    RESPONDED,
    CompleteEnrolment,
    EnrolIn,
    PublishOutcome,
    ScheduleAt,
    SendMessage,
    Transition,
)
from campaigns.domain.machine import (
    cancel,
    defer,
    due,
    enrol,
    in_control_group,
    message_id,
    order,
    respond,
    response_kind,
    withdraw,
)
from campaigns.domain.model import Campaign, Enrolment, Variant
from campaigns.domain.sequences import NURTURE, STANDARD
from cartera_common.events.changes import CUSTOMER_RESPONDED, WINBACK_ENDED, CustomerResponded, WinbackEnded

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
STANDARD_DAYS = (0, 7, 14, 24, 34, 48)  # when each of the six steps goes out
END_DAY = 48 + 14
E = TypeVar("E")


def days(n: float) -> timedelta:
    return timedelta(days=n)


def customer(campaign: Campaign, *, control: bool) -> str:
    return next(c for i in count() if in_control_group(campaign, c := f"c-{i}") == control)


def start(campaign: Campaign = STANDARD, *, control: bool = False, at: datetime = T0) -> Enrolment:
    started = enrol(campaign, workspace_id="w", customer_id=customer(campaign, control=control), now=at)
    assert started is not None
    return started.enrolment


def walk(e: Enrolment, campaign: Campaign = STANDARD, *, steps: int | None = None) -> tuple[Enrolment, list[object]]:
    """Fires the timer at each due time, `steps` times or until the enrolment ends."""
    effects: list[object] = []
    while e.active and e.due_at is not None and (steps is None or steps > 0):
        e, fx = due(e, campaign, e.due_at)
        effects.extend(fx)
        steps = None if steps is None else steps - 1
    return e, effects


def of(kind: type[E], effects: Iterable[object]) -> list[E]:
    return [x for x in effects if isinstance(x, kind)]


def test_enrolling_schedules_the_first_step_and_announces_the_enrolment() -> None:
    t = enrol(STANDARD, workspace_id="w", customer_id=customer(STANDARD, control=False), now=T0)
    assert t is not None
    e, effects = t
    assert (e.state, e.step, e.due_at, e.control, e.enrolled_at) == ("active", 0, T0, False, T0)
    assert effects[0] == ScheduleAt(e.id, T0)
    assert of(PublishOutcome, effects)[0].type == "winback_enrolled"
    assert [h.kind for h in e.path] == ["enrolled"]


def test_each_step_goes_out_after_its_delay_from_the_previous_and_the_next_is_scheduled() -> None:
    e, effects = walk(start(), steps=len(STANDARD_DAYS))
    sends = of(SendMessage, effects)
    assert [s.step for s in sends] == [0, 1, 2, 3, 4, 5]
    assert [h.at for h in e.path if h.kind == "sent"] == [T0 + days(d) for d in STANDARD_DAYS]
    assert [s.content.template_id for s in sends] == [step.template_id for step in STANDARD.steps]
    assert of(ScheduleAt, effects)[-1] == ScheduleAt(e.id, T0 + days(END_DAY))


def test_offers_carry_a_coupon_and_plain_messages_do_not() -> None:
    _, effects = walk(start(), steps=6)
    coupons = [(s.content.offer.kind, s.coupon is not None) for s in of(SendMessage, effects)]
    assert coupons == [("none", False), ("none", False), ("incentive", True)] + [("percent_off", True)] * 2 + [
        ("none", False)
    ]
    assert [s.content.offer.percent for s in of(SendMessage, effects)][3:5] == [10, 15]


def test_no_response_through_the_last_step_ends_it_and_reports_the_loss() -> None:
    e, effects = walk(start())
    assert (e.state, e.outcome, e.ended_at, e.due_at) == ("ended", "no_response", T0 + days(END_DAY), None)
    assert of(CompleteEnrolment, effects) == [
        CompleteEnrolment(e.id, "no_response", "no response through the last step")
    ]
    loss = of(PublishOutcome, effects)[-1]
    assert (loss.type, loss.outcome) == ("winback_ended", "no_response")
    assert WinbackEnded.model_validate(loss.payload()).outcome == "no_response"


def test_a_timer_that_fires_early_or_twice_changes_nothing() -> None:
    e, _ = walk(start(), steps=1)
    assert e.due_at == T0 + days(7)
    assert due(e, STANDARD, e.due_at - timedelta(seconds=1)) == Transition(e)
    sent, _ = walk(e, steps=1)
    assert due(sent, STANDARD, T0 + days(7)) == Transition(sent)  # the same timer again


@pytest.mark.parametrize("sent", range(7))
def test_an_order_at_any_step_ends_it_at_once_as_reactivated(sent: int) -> None:
    e, _ = walk(start(), steps=sent)
    at = T0 + days(STANDARD_DAYS[sent - 1] + 1 if sent else 0.5)
    ended, effects = order(e, at=at, amount=80.0)
    assert (ended.state, ended.outcome, ended.ended_at) == ("ended", "reactivated", at)
    assert ended.credit is not None and ended.credit.step == (sent - 1 if sent else None)
    published = of(PublishOutcome, effects)[-1]
    assert (published.outcome, published.amount) == ("reactivated", 80.0)
    assert walk(ended)[1] == []


def test_an_order_is_credited_to_the_step_whose_coupon_it_carries() -> None:
    e, effects = walk(start(), steps=5)
    ten_off = of(SendMessage, effects)[3]
    assert ten_off.coupon is not None and ten_off.coupon.startswith("WB")
    ended, _ = order(e, at=T0 + days(40), coupon=ten_off.coupon.lower())
    assert ended.credit is not None
    assert (ended.credit.step, ended.credit.by_coupon) == (3, True)


def test_an_order_without_a_known_coupon_is_credited_to_the_last_step_sent() -> None:
    e, _ = walk(start(), steps=3)
    ended, _ = order(e, at=T0 + days(15), coupon="SOMEONE-ELSES")
    assert ended.credit is not None
    assert (ended.credit.step, ended.credit.variant, ended.credit.by_coupon) == (2, "default", False)


def test_an_order_placed_before_the_enrolment_is_not_a_return() -> None:
    e = start()
    assert order(e, at=T0 - days(1)) == Transition(e)


@pytest.mark.parametrize("sent", range(7))
def test_a_response_without_an_order_at_any_step_moves_the_customer_to_nurture(sent: int) -> None:
    e, _ = walk(start(), steps=sent)
    at = T0 + days(STANDARD_DAYS[sent - 1] + 2 if sent else 0.5)
    ended, effects = respond(e, STANDARD, at=at, kind="replied")
    assert (ended.state, ended.outcome, ended.responded) == ("ended", "responded", True)
    assert of(EnrolIn, effects) == [EnrolIn("w", e.customer_id, "nurture", at)]
    assert [p.type for p in of(PublishOutcome, effects)] == [CUSTOMER_RESPONDED, WINBACK_ENDED]
    moved = enrol(NURTURE, workspace_id="w", customer_id=e.customer_id, now=at, history=[ended])
    assert moved is not None and moved.enrolment.due_at == at + days(3)


def test_in_nurture_a_response_is_noted_and_the_sequence_carries_on_to_an_answered_end() -> None:
    e, _ = walk(start(NURTURE), NURTURE, steps=2)
    noted, effects = respond(e, NURTURE, at=T0 + days(3 + 14 + 1), kind="clicked")
    assert (noted.state, noted.responded, of(EnrolIn, effects)) == ("active", True, [])
    ended, _ = walk(noted, NURTURE)
    assert ended.outcome == "responded"  # answered, so not reported lost


@pytest.mark.parametrize("sent", range(7))
def test_an_unsubscribe_at_any_step_ends_it_and_nothing_is_ever_sent_again(sent: int) -> None:
    e, _ = walk(start(), steps=sent)
    ended, effects = withdraw(e, STANDARD, at=T0 + days(50), consent="email")
    assert (ended.state, ended.outcome) == ("ended", "cancelled")
    assert of(PublishOutcome, effects)[-1].outcome == "cancelled"
    for later in (T0 + days(d) for d in (60, 100, 400)):
        assert due(ended, STANDARD, later) == Transition(ended)


def test_withdrawing_consent_for_a_channel_the_campaign_does_not_use_changes_nothing() -> None:
    e = start()
    assert withdraw(e, STANDARD, at=T0, consent="sms") == Transition(e)
    assert withdraw(e, STANDARD, at=T0, consent="all").enrolment.outcome == "cancelled"


def test_a_step_on_a_channel_without_consent_is_skipped_and_a_campaign_that_reached_nobody_is_not_a_loss() -> None:
    e = start()
    effects: list[object] = []
    while e.active:
        assert e.due_at is not None
        e, fx = due(e, STANDARD, e.due_at, consent={"email": False})
        effects.extend(fx)
    assert of(SendMessage, effects) == []
    assert {h.kind for h in e.path} == {"enrolled", "skipped", "ended"}
    assert e.outcome == "cancelled"


def test_control_members_never_get_a_message_yet_walk_the_same_timeline() -> None:
    treated, treated_fx = walk(start(control=False))
    held, held_fx = walk(start(control=True))
    assert held.control and of(SendMessage, held_fx) == []
    assert [h.kind for h in held.path].count("withheld") == len(STANDARD.steps)
    assert [s.at for s in of(ScheduleAt, held_fx)] == [s.at for s in of(ScheduleAt, treated_fx)]
    assert (held.outcome, held.ended_at) == (treated.outcome, treated.ended_at)
    assert of(PublishOutcome, held_fx)[-1].control is True


def test_a_control_member_who_orders_is_credited_to_the_last_step_reached() -> None:
    held, _ = walk(start(control=True), steps=4)
    ended, _ = order(held, at=T0 + days(30))
    assert ended.credit is not None
    assert (ended.outcome, ended.credit.step, ended.credit.by_coupon) == ("reactivated", 3, False)


def test_a_control_member_who_calls_in_is_noted_but_not_moved_to_nurture() -> None:
    held = start(control=True)
    noted, effects = respond(held, STANDARD, at=T0 + days(1), kind="contacted_us")
    assert (noted.state, noted.responded, of(EnrolIn, effects)) == ("active", True, [])


def test_an_ended_enrolment_ignores_everything() -> None:
    ended, _ = cancel(start(), at=T0 + days(1), reason="customer erased")
    at = T0 + days(2)
    for reaction in (
        due(ended, STANDARD, at),
        order(ended, at=at),
        respond(ended, STANDARD, at=at, kind="replied"),
        withdraw(ended, STANDARD, at=at),
        cancel(ended, at=at, reason="again"),
        defer(ended, now=at, until=at + days(1), reason="cap"),
    ):
        assert reaction == Transition(ended)


def test_a_deferred_step_goes_out_later_and_the_next_waits_its_full_delay_from_then() -> None:
    e, _ = walk(start(), steps=1)
    later = T0 + days(9)
    deferred, effects = defer(e, now=T0 + days(7), until=later, reason="frequency cap")
    assert (deferred.due_at, effects) == (later, (ScheduleAt(e.id, later),))
    assert deferred.path[-1].kind == "deferred"
    sent, _ = walk(deferred, steps=1)
    assert sent.due_at == later + days(7)
    assert defer(sent, now=later, until=later, reason="earlier than due") == Transition(sent)


def test_a_customer_is_in_one_sequence_at_a_time_and_re_enters_only_after_the_cool_off() -> None:
    e = start()
    assert enrol(STANDARD, workspace_id="w", customer_id=e.customer_id, now=T0 + days(1), history=[e]) is None
    ended, _ = walk(e)
    assert ended.ended_at is not None
    early = ended.ended_at + STANDARD.reentry - timedelta(seconds=1)
    assert enrol(STANDARD, workspace_id="w", customer_id=e.customer_id, now=early, history=[ended]) is None
    again = enrol(
        STANDARD, workspace_id="w", customer_id=e.customer_id, now=early + timedelta(seconds=1), history=[ended]
    )
    assert again is not None and again.enrolment.id != e.id
    assert again.enrolment.path[0].detail.startswith("cycle 2")


def test_replaying_the_same_enrolment_names_the_same_enrolment_and_messages() -> None:
    a, b = start(), start()
    assert a.id == b.id
    assert of(SendMessage, walk(a)[1]) == of(SendMessage, walk(b)[1])


def test_the_chosen_variant_is_what_is_sent_and_an_unknown_one_is_refused() -> None:
    first = STANDARD.steps[0].model_copy(update={"variants": (Variant(id="short", template_id="standard.short"),)})
    campaign = STANDARD.model_copy(update={"steps": (first, *STANDARD.steps[1:])})
    e = start(campaign)
    _, effects = due(e, campaign, T0, variant="short")
    sent = of(SendMessage, effects)[0]
    assert (sent.variant, sent.content.template_id, sent.content.call_to_action) == (
        "short",
        "standard.short",
        first.call_to_action,
    )
    with pytest.raises(ValueError, match="no variant"):
        due(e, campaign, T0, variant="missing")


def test_a_campaign_has_four_to_seven_steps() -> None:
    for n in (3, 8):
        with pytest.raises(ValidationError):
            Campaign(id="x", name="x", steps=tuple(STANDARD.steps[:1]) * n)


def test_responses_are_replies_clicks_calls_in_and_positive_calls_but_not_opens() -> None:
    assert response_kind("message_engagement", {"kind": "replied"}) == "replied"
    assert response_kind("message_engagement", {"kind": "clicked"}) == "clicked"
    assert response_kind("message_engagement", {"kind": "opened"}) is None
    assert response_kind("interaction", {"direction": "inbound", "channel": "call"}) == "contacted_us"
    assert response_kind("interaction", {"direction": "outbound", "outcome": "Interested"}) == "positive_call"
    assert response_kind("interaction", {"direction": "outbound", "outcome": "no_answer"}) is None


@given(st.text(min_size=1, max_size=40), st.integers(0, 6), st.text(min_size=1, max_size=40), st.integers(0, 6))
def test_message_ids_are_deterministic_and_unique_per_enrolment_and_step(a: str, i: int, b: str, j: int) -> None:
    assert message_id(a, i) == message_id(a, i)
    assert (message_id(a, i) == message_id(b, j)) == ((a, i) == (b, j))


@settings(max_examples=25, deadline=None)
@given(st.floats(0.02, 0.98), st.text(min_size=1, max_size=20))
def test_control_assignment_is_stable_and_close_to_the_share(share: float, campaign_name: str) -> None:
    campaign = STANDARD.model_copy(update={"id": "c" + str(abs(hash(campaign_name)) % 10**6), "control_share": share})
    n = 4000
    held = sum(in_control_group(campaign, f"customer-{i}") for i in range(n))
    assert abs(held / n - share) < 4 * (share * (1 - share) / n) ** 0.5 + 1e-9
    rebuilt = Campaign.model_validate(campaign.model_dump())
    assert all(
        in_control_group(campaign, f"customer-{i}") == in_control_group(rebuilt, f"customer-{i}") for i in range(200)
    )


REACTIONS = st.lists(
    st.sampled_from(["due", "due", "due", "early", "order", "respond", "withdraw", "defer"]), max_size=20
)


def react(action: str, e: Enrolment, now: datetime) -> Transition:
    if action == "due":
        return due(e, STANDARD, now)
    if action == "early":
        return due(e, STANDARD, now - days(30))
    if action == "order":
        return order(e, at=now)
    if action == "respond":
        return respond(e, STANDARD, at=now, kind="clicked")
    if action == "withdraw":
        return withdraw(e, STANDARD, at=now)
    return defer(e, now=now, until=(e.due_at or now) + days(1), reason="cap")


@given(REACTIONS, st.booleans())
def test_whatever_happens_no_step_is_sent_twice_and_nothing_is_sent_after_the_end(
    script: list[str], control: bool
) -> None:
    e, now = start(control=control), T0
    effects: list[object] = []
    ended_after: int | None = None
    for action in script:
        now = max(now, e.due_at or now) if action == "due" else now + timedelta(hours=1)
        was_active = e.active
        e, fx = react(action, e, now)
        effects.extend(fx)
        if was_active and not e.active:
            ended_after = len(effects)
    sends = of(SendMessage, effects)
    assert len({s.message_id for s in sends}) == len(sends) == len({s.step for s in sends})
    assert not (control and sends)
    if ended_after is not None:
        assert of(SendMessage, effects[ended_after:]) == []
        assert len(of(CompleteEnrolment, effects)) == 1


def test_what_is_published_speaks_the_campaign_outcomes_contract() -> None:
    assert (ENDED, RESPONDED) == (WINBACK_ENDED, CUSTOMER_RESPONDED)
    _, effects = walk(start())
    ended = of(PublishOutcome, effects)[-1].payload()
    assert WinbackEnded.model_validate(ended).campaign_id == STANDARD.id
    assert ended["control"] is False and ended["step"] == 5
    _, responded = respond(start(), STANDARD, at=T0, kind="replied")
    payload = of(PublishOutcome, responded)[0].payload()
    assert CustomerResponded.model_validate(payload).kind == "replied"
