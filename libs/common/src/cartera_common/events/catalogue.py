"""Every event type Cartera accepts, with its fields documented for the OpenAPI.

Adding a field is additive; removing or changing one is a new `schema_version`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, EmailStr, Field, TypeAdapter

from cartera_common.events.base import Currency, Id, IncomingBase, Money, Probability, Text, TimeZone

SCHEMA_VERSION = 1


class OrderItem(BaseModel):
    sku: Id | None = None
    name: Text | None = None
    category: Text | None = Field(default=None, description="Used for the customer's favourite category.")
    quantity: Annotated[float, Field(gt=0)] = 1
    unit_price: Money | None = None


class _Order(IncomingBase):
    order_id: Id
    amount: Money = Field(description="Order total in `currency`.")
    currency: Currency = "EUR"
    margin: Annotated[float, Field(ge=-1e12, le=1e12)] | None = Field(
        default=None, description="Gross margin of the order in `currency`."
    )
    items: list[OrderItem] = Field(default_factory=list)
    coupon_code: Text | None = Field(default=None, description="Attributes the order to a campaign offer.")


class OrderCompleted(_Order):
    type: Literal["order_completed"]


class OrderRefunded(_Order):
    """`amount` is the amount refunded, which may be part of the order."""

    type: Literal["order_refunded"]


class OrderCancelled(IncomingBase):
    type: Literal["order_cancelled"]
    order_id: Id
    amount: Money | None = None
    currency: Currency = "EUR"
    reason_code: Text | None = None


class Interaction(IncomingBase):
    """A call, email, visit, chat or meeting between the business and the customer."""

    type: Literal["interaction"]
    channel: Literal["call", "email", "visit", "chat", "meeting"]
    direction: Literal["inbound", "outbound"] = "inbound"
    outcome: Text | None = Field(default=None, description="e.g. reached, no_answer, interested, declined.")
    reason_code: Text | None = Field(default=None, description="Why the customer left or called.")
    agent: Text | None = None
    duration_s: Annotated[float, Field(ge=0)] | None = None
    notes: Text | None = None


class _Complaint(IncomingBase):
    complaint_id: Id
    category: Text | None = None
    reason_code: Text | None = None
    severity: Literal["low", "medium", "high"] | None = None
    description: Text | None = None


class ComplaintOpened(_Complaint):
    type: Literal["complaint_opened"]


class ComplaintResolved(_Complaint):
    type: Literal["complaint_resolved"]
    resolution: Text | None = None


class _Delivery(IncomingBase):
    order_id: Id
    delivery_id: Id | None = None
    reason: Text | None = None
    carrier: Text | None = None


class DeliveryFailed(_Delivery):
    type: Literal["delivery_failed"]


class DeliveryLate(_Delivery):
    type: Literal["delivery_late"]
    delay_days: Annotated[float, Field(ge=0)] | None = None


class SupportTicket(IncomingBase):
    type: Literal["support_ticket"]
    ticket_id: Id
    status: Literal["opened", "updated", "closed"] = "opened"
    subject: Text | None = None
    reason_code: Text | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None


class _Lead(IncomingBase):
    """Signs of interest: they move a prospect to potential and feed the lead score."""

    channel: Text | None = Field(default=None, description="Where the interest came from (web, fair, referral).")
    campaign: Text | None = None
    product: Text | None = None


class LeadCaptured(_Lead):
    type: Literal["lead_captured"]


class DemoRequested(_Lead):
    type: Literal["demo_requested"]


class TrialRequested(_Lead):
    type: Literal["trial_requested"]


class QuoteRequested(_Lead):
    type: Literal["quote_requested"]
    amount: Money | None = None
    currency: Currency = "EUR"


class _Opportunity(IncomingBase):
    opportunity_id: Id
    amount: Money | None = None
    currency: Currency = "EUR"
    probability: Probability | None = Field(default=None, description="0 to 1; weights the pipeline forecast.")
    expected_close: date | None = None
    stage: Text | None = None


class OpportunityOpened(_Opportunity):
    type: Literal["opportunity_opened"]


class OpportunityUpdated(_Opportunity):
    type: Literal["opportunity_updated"]


class OpportunityWon(_Opportunity):
    type: Literal["opportunity_won"]


class OpportunityLost(_Opportunity):
    type: Literal["opportunity_lost"]
    reason_code: Text | None = None


class ProfileUpdated(IncomingBase):
    """Only the fields present change; traits are merged."""

    type: Literal["profile_updated"]
    name: Text | None = None
    email: EmailStr | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9 ()./-]{5,32}$")] | None = None
    locale: Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")] | None = None
    time_zone: TimeZone | None = None
    industry: Text | None = Field(default=None, description="Industry or sector code (e.g. NACE, SIC).")
    company_size: Text | None = Field(default=None, description="Size band, e.g. 1-10, 11-50.")
    region: Text | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    traits: dict[str, Any] = Field(default_factory=dict)


class ConsentChanged(IncomingBase):
    type: Literal["consent_changed"]
    channel: Literal["email", "sms", "phone", "post", "all"]
    granted: bool
    purpose: Text | None = None


class Unsubscribed(IncomingBase):
    type: Literal["unsubscribed"]
    channel: Literal["email", "sms", "phone", "post", "all"] = "all"
    campaign_id: Id | None = None
    reason: Text | None = None


class CostRecorded(IncomingBase):
    """Cost to serve (support time, returns, shipping) that profitability subtracts."""

    type: Literal["cost_recorded"]
    amount: Money
    currency: Currency = "EUR"
    category: Text | None = None


class MessageEngagement(IncomingBase):
    type: Literal["message_engagement"]
    kind: Literal["delivered", "opened", "clicked", "replied", "bounced", "complained"]
    message_id: Id | None = None
    campaign_id: Id | None = None
    channel: Literal["email", "sms", "webhook", "call"] = "email"
    url: Text | None = None


class CustomerErased(IncomingBase):
    """Right to erasure: services drop what they hold on the customer."""

    type: Literal["customer_erased"]
    reason: Text | None = None


IncomingEvent = Annotated[
    OrderCompleted
    | OrderRefunded
    | OrderCancelled
    | Interaction
    | ComplaintOpened
    | ComplaintResolved
    | DeliveryFailed
    | DeliveryLate
    | SupportTicket
    | LeadCaptured
    | DemoRequested
    | TrialRequested
    | QuoteRequested
    | OpportunityOpened
    | OpportunityUpdated
    | OpportunityWon
    | OpportunityLost
    | ProfileUpdated
    | ConsentChanged
    | Unsubscribed
    | CostRecorded
    | MessageEngagement
    | CustomerErased,
    Field(discriminator="type"),
]

INCOMING_EVENT: TypeAdapter[IncomingEvent] = TypeAdapter(IncomingEvent)

EVENT_MODELS: dict[str, type[IncomingBase]] = {}


def _collect(cls: type[IncomingBase]) -> None:
    for sub in cls.__subclasses__():
        field_info = sub.model_fields.get("type")
        tags = get_args(field_info.annotation) if field_info is not None else ()
        if tags:
            EVENT_MODELS[str(tags[0])] = sub
        _collect(sub)


_collect(IncomingBase)
EVENT_TYPES: frozenset[str] = frozenset(EVENT_MODELS)


def parse_payload(event_type: str, customer_id: str, payload: dict[str, Any]) -> IncomingBase:
    """Rebuilds the typed event from an envelope's payload, for consumers that want the fields typed."""
    return EVENT_MODELS[event_type].model_validate({"type": event_type, "customer_id": customer_id, **payload})
