"""The ready-made campaigns that ship enabled in the default workspace.

Delays are days after the previous step went out (pacing may push a step later; the next one
then waits its full delay from there). The choices, where the issue left them open:

- Touches are at least a week apart, so one campaign alone never trips the default frequency cap
  (2 messages in 7 days) and a customer is not nagged.
- The gaps widen as offers escalate (7, 7, 10, 10, 14 days): each offer gets time to be used
  before a bigger one lands, and the last "let's reconnect" comes after the longest pause.
- After the last step, 14 days (21 in nurture) for an answer before the enrolment ends; the
  standard sequence ends on day 62, about nine weeks after the lapse.
- 10 % of every campaign's customers are the control group; the cool-off before re-entry is
  180 days (90 for nurture, whose customers already answered once).
- Priorities, for the frequency cap: high value 40, left unhappy 30, nurture 25, standard 20,
  light touch 10.

Probable and improbable responders run in twin campaigns with the same steps (`-improbable`),
so each has its own control group and its own rates: mixing them would hide both.
"""

from __future__ import annotations

from typing import Literal

from campaigns.domain.model import NO_OFFER, Audience, Campaign, Channel, ExitRule, Offer, Step

Kind = Literal["standard", "unhappy", "high_value", "light_touch", "nurture"]

IDS: dict[Kind, str] = {
    "standard": "winback-standard",
    "unhappy": "winback-unhappy",
    "high_value": "winback-high-value",
    "light_touch": "winback-light-touch",
    "nurture": "nurture",
}
IMPROBABLE_SUFFIX = "-improbable"

INCENTIVE = Offer(kind="incentive", label="a free trial or an invitation")
TEN_OFF = Offer(kind="percent_off", percent=10)
FIFTEEN_OFF = Offer(kind="percent_off", percent=15)


def _step(days: float, template: str, cta: str, offer: Offer = NO_OFFER, channel: Channel = "email") -> Step:
    return Step(delay_days=days, channel=channel, template_id=template, offer=offer, call_to_action=cta)


def _escalation(kind: str, first_days: float) -> tuple[Step, ...]:
    """What's new, a gift, 10 %, 15 %, and a plain request to reconnect: the body every win-back shares."""
    return (
        _step(first_days, f"{kind}.whats-new", "See what's new since your last visit"),
        _step(7, f"{kind}.incentive", "Claim your invitation", INCENTIVE),
        _step(10, f"{kind}.ten-off", "Use your 10 % code", TEN_OFF),
        _step(10, f"{kind}.fifteen-off", "Use your 15 % code", FIFTEEN_OFF),
        _step(14, f"{kind}.reconnect", "Reply and tell us how we can help"),
    )


WINBACK_AUDIENCE = Audience(statuses=("lapsed", "lost"), responsiveness=("responder", "unknown"))

STANDARD = Campaign(
    id=IDS["standard"],
    name="Standard win-back",
    audience=WINBACK_AUDIENCE,
    priority=20,
    steps=(
        # Names the customer and the relationship: "customer since 2023, 14 orders, mostly flowers".
        _step(0, "standard.personal", "Come back and see us"),
        *_escalation("standard", 7),
    ),
)

UNHAPPY = Campaign(
    id=IDS["unhappy"],
    name="Win-back: left unhappy",
    audience=WINBACK_AUDIENCE.model_copy(update={"unhappy": True}),
    priority=30,
    steps=(
        # Acknowledges the recorded leave reasons (complaint, late delivery) and what changed, no offer.
        _step(0, "unhappy.acknowledge", "Tell us how we can make it right"),
        *_escalation("unhappy", 7),
    ),
)

HIGH_VALUE = Campaign(
    id=IDS["high_value"],
    name="Win-back: high value",
    audience=WINBACK_AUDIENCE.model_copy(update={"tiers": ("very_high", "high")}),
    priority=40,
    steps=(
        # A salesperson asks why they left; the outcome comes back as an interaction with a reason code.
        _step(0, "high-value.call", "Call to ask why they left and log the reason", channel="call_task"),
        _step(3, "high-value.personal", "Come back and see us"),
        *_escalation("high-value", 7),
    ),
)

LIGHT_TOUCH = Campaign(
    id=IDS["light_touch"],
    name="Win-back: light touch",
    audience=WINBACK_AUDIENCE.model_copy(update={"tiers": ("low",)}),
    priority=10,
    steps=(
        # Worth only a reconnect: no offers, four messages, three weeks apart at the end.
        _step(0, "light.personal", "Come back and see us"),
        _step(14, "light.whats-new", "See what's new since your last visit"),
        _step(21, "light.feedback", "Tell us what would bring you back"),
        _step(21, "light.reconnect", "Reply and tell us how we can help"),
    ),
)

NURTURE = Campaign(
    id=IDS["nurture"],
    name="Nurture: responded without buying",
    audience=Audience(statuses=("lapsed", "lost"), responsiveness=("responder",)),
    priority=25,
    reentry_days=90,
    # Already answered once: further answers are noted and the sequence carries on to an order.
    exit=ExitRule(on_response="continue", nurture_campaign_id=None, wait_after_last_days=21),
    steps=(
        _step(3, "nurture.thanks", "Tell us what you are looking for"),
        _step(14, "nurture.whats-new", "See what's new"),
        _step(21, "nurture.inspiration", "See how others use it"),
        _step(21, "nurture.incentive", "Claim your invitation", INCENTIVE),
        _step(28, "nurture.ten-off", "Use your 10 % code", TEN_OFF),
        _step(28, "nurture.season", "See this season's picks"),
        _step(30, "nurture.reconnect", "Reply and tell us how we can help"),
    ),
)


def _improbable(c: Campaign) -> Campaign:
    audience = c.audience.model_copy(update={"responsiveness": ("non_responder",)})
    update = {"id": c.id + IMPROBABLE_SUFFIX, "name": f"{c.name} (improbable responders)", "audience": audience}
    return c.model_copy(update=update)


_PROBABLE = (STANDARD, UNHAPPY, HIGH_VALUE, LIGHT_TOUCH)
READY_MADE: dict[str, Campaign] = {c.id: c for c in (*_PROBABLE, *map(_improbable, _PROBABLE), NURTURE)}


def campaign_id(kind: Kind, *, improbable: bool = False) -> str:
    """Nurture has no twin: everyone in it has answered."""
    return IDS[kind] + (IMPROBABLE_SUFFIX if improbable and kind != "nurture" else "")
