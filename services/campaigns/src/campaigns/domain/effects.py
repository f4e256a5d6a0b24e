"""What the state machine asks the handlers to do, as values: the machine itself does nothing.

A handler applies all of a transition's effects in the transaction that stores the enrolment:
SendMessage becomes a message row (recorded as sending before the provider is called), ScheduleAt
the enrolment's timer, PublishOutcome an outbox row on `campaign-outcomes`. `message_sent` is
not among them: delivery publishes it once the provider has taken the message, which the machine
cannot know.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, NamedTuple

from campaigns.domain.model import Enrolment, Outcome, Step
from cartera_common.events.changes import CustomerResponded, WinbackEnded

OutcomeType = Literal["winback_enrolled", "customer_responded", "winback_ended"]
ENROLLED: Final = "winback_enrolled"  # changes.WINBACK_ENROLLED
RESPONDED: Final = "customer_responded"  # changes.CUSTOMER_RESPONDED
ENDED: Final = "winback_ended"  # changes.WINBACK_ENDED


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Record the message as sending, then deliver it; `message_id` makes a retry the same message."""

    message_id: str
    enrolment_id: str
    workspace_id: str
    customer_id: str
    campaign_id: str
    step: int
    variant: str
    content: Step  # the step as this variant sends it
    coupon: str | None


@dataclass(frozen=True, slots=True)
class ScheduleAt:
    """Arm the enrolment's one timer (replacing any earlier one) to call `due` at `at`."""

    enrolment_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CompleteEnrolment:
    """The enrolment is over: drop its timer; nothing is ever sent for it again."""

    enrolment_id: str
    outcome: Outcome
    detail: str


@dataclass(frozen=True, slots=True)
class EnrolIn:
    """Start the customer on another campaign (nurture after a response), subject to its own re-entry rule."""

    workspace_id: str
    customer_id: str
    campaign_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """A message for `campaign-outcomes`, keyed `workspace:customer`; the segmenter and scoring follow it."""

    type: OutcomeType
    enrolment_id: str
    workspace_id: str
    customer_id: str
    campaign_id: str
    at: datetime
    control: bool
    outcome: Outcome | None = None
    response: str | None = None
    step: int | None = None
    amount: float | None = None

    def payload(self) -> dict[str, object]:
        """The payload in the shared contract's shape, with the enrolment's details as additive fields."""
        extra: dict[str, object] = {"enrolment_id": self.enrolment_id, "control": self.control, "step": self.step}
        if self.amount is not None:
            extra["amount"] = self.amount
        if self.type == ENDED and self.outcome is not None:
            ended = WinbackEnded(campaign_id=self.campaign_id, outcome=self.outcome, **extra)
            return ended.model_dump(mode="json")
        if self.type == RESPONDED:
            return CustomerResponded(campaign_id=self.campaign_id, kind=self.response, **extra).model_dump(mode="json")
        return {"campaign_id": self.campaign_id, **extra}


Effect = SendMessage | ScheduleAt | CompleteEnrolment | EnrolIn | PublishOutcome


class Transition(NamedTuple):
    enrolment: Enrolment
    effects: tuple[Effect, ...] = ()
