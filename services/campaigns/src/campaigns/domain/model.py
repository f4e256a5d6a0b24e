"""What a campaign is, and where one customer stands in it.

The configuration (campaign, steps, offers, audience) is validated at the edge and frozen
(pydantic), like the segmenter's policy; the state of an enrolment is a plain frozen dataclass
that only `machine` produces. Nothing here changes once built: every move makes a new value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from cartera_common.events.base import RefusesNul
from cartera_common.events.changes import CustomerSnapshot, Responsiveness, Status, Tier

Channel = Literal["email", "webhook", "sms", "call_task"]
Outcome = Literal["reactivated", "responded", "no_response", "cancelled"]  # WinbackEnded.outcome
State = Literal["active", "ended"]
Intensity = Literal["full", "light", "none"]
Key = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Label = Annotated[str, Field(min_length=1, max_length=200)]
Days = Annotated[float, Field(ge=0, le=3650)]

DEFAULT_VARIANT = "default"  # the step's own template, offer and call to action
MIN_STEPS, MAX_STEPS = 4, 7

# Which consent (CustomerSnapshot.consent, ConsentChanged.channel) governs each channel. A webhook
# hands the message to the business's own system, so only a withdrawal of everything stops it.
CONSENT_FOR: dict[Channel, str | None] = {"email": "email", "sms": "sms", "call_task": "phone", "webhook": None}


class _Frozen(RefusesNul):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Offer(_Frozen):
    """What the customer is given for coming back; anything but `none` gets a coupon code."""

    kind: Literal["none", "incentive", "percent_off"] = "none"
    percent: Annotated[float, Field(gt=0, le=100)] | None = None
    label: Label | None = Field(default=None, description="e.g. 'a free month', 'a private preview'.")

    @model_validator(mode="after")
    def _percent_only_when_percent_off(self) -> Offer:
        if (self.kind == "percent_off") != (self.percent is not None):
            raise ValueError("percent is required for percent_off offers and only for them")
        return self


NO_OFFER = Offer()


class Variant(_Frozen):
    """An alternative for one step; what it leaves out is taken from the step."""

    id: Key
    template_id: Key
    offer: Offer | None = None
    call_to_action: Label | None = None


class Step(_Frozen):
    delay_days: Days = Field(description="Wait after the previous step went out (after enrolment for the first).")
    channel: Channel
    template_id: Key
    offer: Offer = NO_OFFER
    call_to_action: Label
    variants: tuple[Variant, ...] = ()

    @model_validator(mode="after")
    def _distinct_variants(self) -> Step:
        ids = [v.id for v in self.variants]
        if DEFAULT_VARIANT in ids or len(set(ids)) != len(ids):
            raise ValueError(f"variant ids must be distinct and not {DEFAULT_VARIANT!r}")
        return self

    @property
    def delay(self) -> timedelta:
        return timedelta(days=self.delay_days)

    @property
    def arms(self) -> tuple[str, ...]:
        """The names Thompson sampling chooses between: the step itself first, then its variants."""
        return (DEFAULT_VARIANT, *(v.id for v in self.variants))

    def as_variant(self, variant: str) -> Step:
        """The step as sent with `variant`: the variant's template, offer and call to action."""
        if variant == DEFAULT_VARIANT:
            return self.model_copy(update={"variants": ()})
        for v in self.variants:
            if v.id == variant:
                cta = v.call_to_action or self.call_to_action
                return Step(
                    delay_days=self.delay_days,
                    channel=self.channel,
                    template_id=v.template_id,
                    offer=v.offer or self.offer,
                    call_to_action=cta,
                )
        raise ValueError(f"step has no variant {variant!r}")


@dataclass(frozen=True, slots=True)
class WinbackDecision:
    """The scoring service's "do we want them back?"; until it publishes one, everyone is eligible."""

    worth: bool
    intensity: Intensity = "full"


class Audience(_Frozen):
    """Who a custom campaign is for; `None` means any. All the given conditions must hold."""

    statuses: tuple[Status, ...] = ("lapsed",)
    tiers: tuple[Tier, ...] | None = None
    pareto: bool | None = None
    unhappy: bool | None = None
    responsiveness: tuple[Responsiveness, ...] | None = None
    industries: tuple[str, ...] | None = Field(default=None, description="Code prefixes: '56' matches '56.10'.")
    worth_winning_back: bool | None = None

    def matches(self, customer: CustomerSnapshot, decision: WinbackDecision | None = None) -> bool:
        worth = decision.worth if decision is not None else True
        checks = (
            customer.status in self.statuses,
            self.tiers is None or customer.tier in self.tiers,
            self.pareto is None or customer.pareto == self.pareto,
            self.unhappy is None or customer.unhappy == self.unhappy,
            self.responsiveness is None or customer.responsiveness in self.responsiveness,
            self.industries is None or any((customer.industry or "").startswith(p) for p in self.industries),
            self.worth_winning_back is None or worth == self.worth_winning_back,
        )
        return all(checks)


class ExitRule(_Frozen):
    """What ends an enrolment besides an order (which always does) and an unsubscribe (which always does)."""

    on_response: Literal["nurture", "continue"] = Field(
        default="nurture",
        description="nurture: a reply, click or positive call without an order moves the customer to "
        "`nurture_campaign_id`. continue: the response is recorded and the sequence goes on.",
    )
    nurture_campaign_id: Key | None = "nurture"
    wait_after_last_days: Days = Field(default=14, description="How long the last message has to be answered.")

    @model_validator(mode="after")
    def _nurture_needs_a_campaign(self) -> ExitRule:
        if self.on_response == "nurture" and self.nurture_campaign_id is None:
            raise ValueError("on_response 'nurture' needs a nurture_campaign_id")
        return self


class Campaign(_Frozen):
    id: Key
    name: Label
    audience: Audience = Audience()
    control_share: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.1, description="Share of enrolled customers held out, never messaged, to measure uplift."
    )
    steps: tuple[Step, ...] = Field(min_length=MIN_STEPS, max_length=MAX_STEPS)
    exit: ExitRule = ExitRule()
    reentry_days: Days = Field(default=180, description="Cool-off after an enrolment ends before the next one.")
    priority: int = Field(default=0, ge=0, le=1000, description="Higher goes first when the frequency cap bites.")

    @property
    def wait_after_last(self) -> timedelta:
        return timedelta(days=self.exit.wait_after_last_days)

    @property
    def reentry(self) -> timedelta:
        return timedelta(days=self.reentry_days)

    def uses_consent(self, consent: str) -> bool:
        """Whether withdrawing `consent` ('all', 'email', 'sms', 'phone', 'post') silences this campaign."""
        return consent == "all" or any(CONSENT_FOR[s.channel] == consent for s in self.steps)


def consented(consent: Mapping[str, bool], channel: Channel) -> bool:
    """Absent consent is unknown and allowed (an existing customer); only an explicit withdrawal stops."""
    if consent.get("all") is False:
        return False
    key = CONSENT_FOR[channel]
    return key is None or consent.get(key) is not False


@dataclass(frozen=True, slots=True)
class Happened:
    """One line of an enrolment's path, as the API shows it."""

    at: datetime
    kind: Literal["enrolled", "sent", "withheld", "skipped", "deferred", "responded", "ordered", "ended"]
    step: int | None = None  # 0-based index into the campaign's steps
    variant: str | None = None
    message_id: str | None = None
    coupon: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Credit:
    """Which step brought the customer back: the one whose coupon the order carried, else the last one."""

    step: int | None  # None: the order came before any step
    variant: str | None
    by_coupon: bool
    amount: float | None


@dataclass(frozen=True, slots=True)
class Enrolment:
    id: str
    workspace_id: str
    campaign_id: str
    customer_id: str
    control: bool
    enrolled_at: datetime
    step: int = 0  # the next step to run; len(steps) once the last one has run
    due_at: datetime | None = None  # when the next step (or the end) is due; None once ended
    state: State = "active"
    responded: bool = False
    outcome: Outcome | None = None
    ended_at: datetime | None = None
    credit: Credit | None = None
    path: tuple[Happened, ...] = ()

    @property
    def active(self) -> bool:
        return self.state == "active"

    @property
    def sent_any(self) -> bool:
        return any(h.kind == "sent" for h in self.path)
