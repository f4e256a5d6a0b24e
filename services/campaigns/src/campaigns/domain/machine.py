"""The enrolment state machine: how one customer moves through one win-back sequence.

Every reaction is a pure function from an enrolment (and what happened, and `now`) to the next
enrolment and the effects it implies. The handlers carry the effects out: store the enrolment,
record and deliver the message, arm the timer, stage the outcome in the outbox.

    enrol ──▶ due ─▶ due ─▶ … ─▶ due (last step) ─▶ due (wait over) ──▶ ended: no_response (a loss)
                │ at any point:
                ├─ order ───────────────▶ ended: reactivated (credited to a step)
                ├─ respond ─────────────▶ ended: responded, and EnrolIn(nurture)
                └─ withdraw / cancel ───▶ ended: cancelled, never sends again

A control-group member walks the same timeline, step by step, but every step is `withheld`: no
SendMessage, so what they do is what would have happened without the campaign. A reaction that
comes too early (a timer that fires twice) or too late (after the end) changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from campaigns.domain.effects import (
    ENDED,
    ENROLLED,
    RESPONDED,
    CompleteEnrolment,
    Effect,
    EnrolIn,
    OutcomeType,
    PublishOutcome,
    ScheduleAt,
    SendMessage,
    Transition,
)
from campaigns.domain.model import (
    DEFAULT_VARIANT,
    Campaign,
    Credit,
    Enrolment,
    Happened,
    Outcome,
    consented,
)

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:cartera:campaigns")

# A response is the customer reaching back: opens are not, since mail privacy features open
# messages nobody read. Call outcomes are free text from the CRM; these count as positive.
RESPONSE_ENGAGEMENTS = frozenset({"clicked", "replied"})
POSITIVE_CALL_OUTCOMES = frozenset({"interested", "positive", "callback", "call_back", "appointment"})


def stable_fraction(*parts: str) -> float:
    """A number in [0, 1) that depends only on `parts`: the same on every machine and every run."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_control_group(campaign: Campaign, customer_id: str) -> bool:
    """Reproducible, and the same in every cycle, so a customer's group never flips between re-entries."""
    return stable_fraction(campaign.id, customer_id) < campaign.control_share


def enrolment_id(workspace_id: str, campaign_id: str, customer_id: str, cycle: int) -> str:
    """Deterministic, so replaying the lapse that enrolled a customer names the same enrolment."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join((workspace_id, campaign_id, customer_id, str(cycle)))))


def message_id(enrolment_id: str, step: int) -> str:
    """One id per (enrolment, step): the provider's idempotency key, so no message is sent twice."""
    return str(uuid.uuid5(_NAMESPACE, f"{enrolment_id}\x1fstep\x1f{step}"))


def coupon_code(message_id: str) -> str:
    """Short enough to type at a till; 50 bits, so two offers in one workspace practically never share one."""
    digest = hashlib.sha256(f"coupon\x1f{message_id}".encode()).digest()
    return "WB" + base64.b32encode(digest).decode()[:10]


def response_kind(event_type: str, payload: Mapping[str, object]) -> str | None:
    """Whether an incoming event is the customer answering, and how: None when it is not."""
    if event_type == "message_engagement" and payload.get("kind") in RESPONSE_ENGAGEMENTS:
        return str(payload["kind"])
    if event_type == "interaction":
        if payload.get("direction", "inbound") == "inbound":
            return "contacted_us"
        if str(payload.get("outcome", "")).lower() in POSITIVE_CALL_OUTCOMES:
            return "positive_call"
    return None


def may_enrol(campaign: Campaign, history: Sequence[Enrolment], now: datetime) -> bool:
    """One sequence at a time per customer (two would contradict each other's offers), then the cool-off."""
    if any(h.active for h in history):
        return False
    ends = [h.ended_at for h in history if h.campaign_id == campaign.id and h.ended_at is not None]
    return not ends or now >= max(ends) + campaign.reentry


def enrol(
    campaign: Campaign, *, workspace_id: str, customer_id: str, now: datetime, history: Sequence[Enrolment] = ()
) -> Transition | None:
    """None when the customer is in a sequence already or still cooling off from this one."""
    if not may_enrol(campaign, history, now):
        return None
    cycle = 1 + sum(h.campaign_id == campaign.id for h in history)
    eid = enrolment_id(workspace_id, campaign.id, customer_id, cycle)
    control = in_control_group(campaign, customer_id)
    first_at = now + campaign.steps[0].delay
    joined = Happened(now, "enrolled", detail=f"cycle {cycle}, {'control group' if control else 'treatment'}")
    e = Enrolment(eid, workspace_id, campaign.id, customer_id, control, now, due_at=first_at, path=(joined,))
    return Transition(e, (ScheduleAt(eid, first_at), _publish(e, ENROLLED, now)))


def due(
    e: Enrolment,
    campaign: Campaign,
    now: datetime,
    *,
    variant: str = DEFAULT_VARIANT,
    consent: Mapping[str, bool] | None = None,
) -> Transition:
    """Runs the step that is due and schedules the next; after the last step's wait, the sequence ends."""
    if not e.active or e.due_at is None or now < e.due_at:
        return Transition(e)
    if e.step >= len(campaign.steps):
        return _finish(e, now)
    step = campaign.steps[e.step]
    content = step.as_variant(variant)
    effects: tuple[Effect, ...] = ()
    if e.control:
        happened = Happened(now, "withheld", e.step, detail="control group")
    elif not consented(consent or {}, step.channel):
        happened = Happened(now, "skipped", e.step, detail=f"no consent for {step.channel}")
    else:
        mid = message_id(e.id, e.step)
        coupon = coupon_code(mid) if content.offer.kind != "none" else None
        happened = Happened(now, "sent", e.step, variant, mid, coupon)
        effects = (
            SendMessage(
                message_id=mid,
                enrolment_id=e.id,
                workspace_id=e.workspace_id,
                customer_id=e.customer_id,
                campaign_id=e.campaign_id,
                step=e.step,
                variant=variant,
                content=content,
                coupon=coupon,
            ),
        )
    after = e.step + 1
    next_at = now + (campaign.steps[after].delay if after < len(campaign.steps) else campaign.wait_after_last)
    moved = replace(e, step=after, due_at=next_at, path=(*e.path, happened))
    return Transition(moved, (*effects, ScheduleAt(e.id, next_at)))


def defer(e: Enrolment, *, now: datetime, until: datetime, reason: str) -> Transition:
    """Pacing moved the due step later (cap, quiet hours, daily limit); later steps keep their delays from it."""
    if not e.active or e.due_at is None or until <= e.due_at:
        return Transition(e)
    happened = Happened(now, "deferred", e.step, detail=f"{reason} until {until.isoformat()}")
    return Transition(replace(e, due_at=until, path=(*e.path, happened)), (ScheduleAt(e.id, until),))


def order(e: Enrolment, *, at: datetime, coupon: str | None = None, amount: float | None = None) -> Transition:
    """A purchase ends the sequence at once, whatever the step; an order from before the enrolment is not a return."""
    if not e.active or at < e.enrolled_at:
        return Transition(e)
    credit = _credit(e, coupon, amount)
    how = "with the step's coupon" if credit.by_coupon else "credited to the last step reached"
    happened = Happened(at, "ordered", credit.step, credit.variant, coupon=coupon, detail=how)
    return _end(replace(e, credit=credit, path=(*e.path, happened)), at, "reactivated", "ordered")


def respond(e: Enrolment, campaign: Campaign, *, at: datetime, kind: str) -> Transition:
    """A reply, click or positive call without an order: warm but not back, so a gentler, longer nurture."""
    if not e.active:
        return Transition(e)
    noted = replace(e, responded=True, path=(*e.path, Happened(at, "responded", _last_step(e), detail=kind)))
    published = _publish(noted, RESPONDED, at, response=kind, step=_last_step(e))
    nurture = campaign.exit.nurture_campaign_id
    # The control group is never moved: it must receive nothing, so it only records the response.
    if e.control or campaign.exit.on_response == "continue" or nurture in (None, campaign.id):
        return Transition(noted, (published,))
    ended = _end(noted, at, "responded", f"{kind}, moved to {nurture}")
    return Transition(ended.enrolment, (published, *ended.effects, EnrolIn(e.workspace_id, e.customer_id, nurture, at)))


def withdraw(e: Enrolment, campaign: Campaign, *, at: datetime, consent: str = "all") -> Transition:
    """Unsubscribing, or withdrawing consent for a channel the campaign uses, ends it for good."""
    if not e.active or not campaign.uses_consent(consent):
        return Transition(e)
    return _end(e, at, "cancelled", f"consent withdrawn ({consent})")


def cancel(e: Enrolment, *, at: datetime, reason: str) -> Transition:
    """Ends without a verdict: the customer is no longer lapsed, was erased, or the campaign was stopped."""
    if not e.active:
        return Transition(e)
    return _end(e, at, "cancelled", reason)


def _finish(e: Enrolment, now: datetime) -> Transition:
    """Lost only if the campaign really tried: a treatment member nothing could be sent to is cancelled."""
    if e.responded:
        return _end(e, now, "responded", "responded without buying")
    if e.control or e.sent_any:
        return _end(e, now, "no_response", "no response through the last step")
    return _end(e, now, "cancelled", "nothing could be sent")


def _end(e: Enrolment, at: datetime, outcome: Outcome, detail: str) -> Transition:
    last = e.credit.step if e.credit is not None else _last_step(e)
    amount = e.credit.amount if e.credit is not None else None
    happened = Happened(at, "ended", last, detail=f"{outcome}: {detail}")
    ended = replace(e, state="ended", due_at=None, outcome=outcome, ended_at=at, path=(*e.path, happened))
    published = _publish(ended, ENDED, at, outcome=outcome, step=last, amount=amount)
    return Transition(ended, (CompleteEnrolment(e.id, outcome, detail), published))


def _credit(e: Enrolment, coupon: str | None, amount: float | None) -> Credit:
    """The step whose coupon the order carries; else the last step reached, since it was the latest nudge."""
    wanted = (coupon or "").strip().upper()
    for h in e.path:
        if wanted and h.kind == "sent" and h.coupon == wanted:
            return Credit(h.step, h.variant, True, amount)
    reached = [h for h in e.path if h.kind in ("sent", "withheld")]
    last = reached[-1] if reached else None
    return Credit(last.step if last else None, last.variant if last else None, False, amount)


def _last_step(e: Enrolment) -> int | None:
    return e.step - 1 if e.step > 0 else None


def _publish(
    e: Enrolment,
    kind: OutcomeType,
    at: datetime,
    *,
    outcome: Outcome | None = None,
    response: str | None = None,
    step: int | None = None,
    amount: float | None = None,
) -> PublishOutcome:
    ids = (e.id, e.workspace_id, e.customer_id, e.campaign_id)
    return PublishOutcome(kind, *ids, at, e.control, outcome, response, step, amount)
