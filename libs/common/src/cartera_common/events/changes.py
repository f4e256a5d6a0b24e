"""What services tell each other, beyond the incoming events: the payloads on `customer-changes`,
`scores` and `campaign-outcomes`. Each travels in the common `Envelope` with the `type` below.

Changes are additive: consumers ignore fields they do not know (extra fields are kept).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["prospect", "potential", "new", "active", "lapsed", "lost", "reactivated"]
STATUSES: tuple[Status, ...] = ("prospect", "potential", "new", "active", "lapsed", "lost", "reactivated")
Tier = Literal["very_high", "high", "medium", "low"]
Frequency = Literal["frequent", "habitual", "occasional"]
Responsiveness = Literal["responder", "non_responder", "unknown"]
ChangeKind = Literal["status", "tier", "pareto", "unhappy", "consent", "responsiveness", "profile"]

CUSTOMER_CHANGED = "customer_changed"
SCORES_UPDATED = "scores_updated"
MESSAGE_SENT = "message_sent"
CUSTOMER_RESPONDED = "customer_responded"
WINBACK_ENDED = "winback_ended"
WINBACK_ENROLLED = "winback_enrolled"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CustomerSnapshot(_Open):
    """Everything a campaign needs to act on a customer without calling the segmenter back."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    time_zone: str | None = None
    industry: str | None = None
    segment: str | None = None
    consent: dict[str, bool] = Field(default_factory=dict, description="Channel → granted; absent means unknown.")
    customer_since: datetime | None = Field(default=None, description="The first order.")
    order_count: int = 0
    revenue: float = 0
    last_order_at: datetime | None = None
    favourite_category: str | None = None
    status: Status
    status_since: datetime | None = None
    tier: Tier | None = None
    frequency: Frequency | None = None
    pareto: bool = False
    unhappy: bool = False
    leave_reasons: list[str] = Field(default_factory=list)
    responsiveness: Responsiveness = "unknown"
    p_alive: float | None = None
    unprofitable: bool = Field(
        default=False, description="Costs more than it brings: profit below zero with a cost to serve."
    )


class CustomerChanged(_Open):
    """Published on `customer-changes` whenever one of `changes` differs from what was last published."""

    changes: list[ChangeKind]
    previous: dict[str, object] = Field(default_factory=dict, description="The changed fields' previous values.")
    reason: str | None = Field(default=None, description="Why the status changed, when it did.")
    policy_version: int = 0
    customer: CustomerSnapshot


class ScoresUpdated(_Open):
    """Published on `scores`; the segmenter reads `p_alive` for the probability suspension point, the
    campaigns `winback_worth` and `winback_intensity`. A field is null when it does not apply (no fit
    yet, not lapsed, not a lead)."""

    p_alive: float | None = Field(default=None, ge=0, le=1)
    clv: float | None = Field(default=None, description="Discounted predicted value of the next 12 months.")
    quadrant: str | None = Field(default=None, description="retain, develop, maintain or abandon.")
    winback_worth: bool | None = Field(default=None, description="For a lapsed or lost customer: worth a win-back.")
    winback_intensity: Literal["full", "light", "none"] | None = Field(
        default=None, description="full: a sequence with a call; light: email only; none: no win-back."
    )
    lead_score: float | None = Field(default=None, description="0-100, for customers who have not bought yet.")
    channel: str | None = Field(
        default=None, description="A lead's contact channel: visit, call, personal_email, email."
    )


class MessageSent(_Open):
    """Published on `campaign-outcomes` when a win-back message goes out."""

    campaign_id: str | None = None
    channel: str | None = None


class CustomerResponded(_Open):
    """Published on `campaign-outcomes` for a reply, click or positive call outcome."""

    campaign_id: str | None = None
    kind: str | None = None


class WinbackEnrolled(_Open):
    """Published on `campaign-outcomes` when a customer enters a win-back sequence (control members too)."""

    campaign_id: str | None = None
    control: bool = False


class WinbackEnded(_Open):
    """Published on `campaign-outcomes` when an enrolment ends; `no_response` makes the customer lost."""

    campaign_id: str | None = None
    outcome: Literal["no_response", "reactivated", "responded", "cancelled"]
