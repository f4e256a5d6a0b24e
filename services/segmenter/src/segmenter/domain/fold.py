"""Folds a batch of events into per-order and per-customer changes, ready for set-based upserts.

Several events for one order or one customer in a batch are merged here, because one
`INSERT … ON CONFLICT DO UPDATE` cannot touch the same row twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from cartera_common.events import Envelope
from cartera_common.orders import ORDER_TYPES, OrderChange, apply_order_event, to_decimal
from segmenter.domain import reasons

CustomerKey = tuple[str, str]
OrderKey = tuple[str, str, str]
IssueKey = tuple[str, str, str, str]  # workspace, customer, kind, ref
INTEREST_TYPES = ("lead_captured", "demo_requested", "trial_requested", "quote_requested")
OPPORTUNITY_STATES = {
    "opportunity_opened": "open",
    "opportunity_updated": "open",
    "opportunity_won": "won",
    "opportunity_lost": "lost",
}
RESPONSES = ("opened", "clicked", "replied")
# Payload fields too bulky or free-form for the timeline summary.
_NOT_IN_TIMELINE = frozenset({"traits", "items", "notes", "description"})

PROFILE_FIELDS = ("name", "email", "phone", "locale", "time_zone", "industry", "company_size", "region", "country")


@dataclass(frozen=True, slots=True)
class ProfileChange:
    at: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Seen:
    first: datetime
    last: datetime
    cost: Decimal = Decimal(0)  # cost to serve recorded in the batch


@dataclass(frozen=True, slots=True)
class IssueChange:
    reason_code: str | None
    detail: str | None
    opened_at: datetime | None  # None: only its resolution is in this batch
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class OpportunityChange:
    at: datetime
    state: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Contact:
    """The latest moments the business reached the customer, the customer answered, or showed interest."""

    contacted_at: datetime | None = None
    responded_at: datetime | None = None
    interest_at: datetime | None = None
    interest_kind: str | None = None


@dataclass
class BatchChanges:
    seen: dict[CustomerKey, Seen] = field(default_factory=dict)
    orders: dict[OrderKey, OrderChange] = field(default_factory=dict)
    profiles: dict[CustomerKey, ProfileChange] = field(default_factory=dict)
    issues: dict[IssueKey, IssueChange] = field(default_factory=dict)
    opportunities: dict[OrderKey, OpportunityChange] = field(default_factory=dict)
    contacts: dict[CustomerKey, Contact] = field(default_factory=dict)
    consent: dict[CustomerKey, dict[str, tuple[bool, datetime]]] = field(default_factory=dict)
    erased: set[CustomerKey] = field(default_factory=set)
    timeline: list[tuple[str, str, datetime, str, str, dict[str, Any]]] = field(default_factory=list)


def fold(events: Iterable[Envelope]) -> BatchChanges:
    out = BatchChanges()
    for e in events:
        key = (e.workspace_id, e.customer_id)
        seen = out.seen.get(key)
        out.seen[key] = (
            Seen(min(seen.first, e.occurred_at), max(seen.last, e.occurred_at), seen.cost)
            if seen
            else Seen(e.occurred_at, e.occurred_at)
        )
        if e.type in ORDER_TYPES:
            okey = (e.workspace_id, e.customer_id, str(e.payload["order_id"]))
            out.orders[okey] = apply_order_event(out.orders.get(okey, OrderChange()), e)
        elif e.type == "profile_updated":
            out.profiles[key] = merge_profile(out.profiles.get(key), e)
        elif e.type == "customer_erased":
            out.erased.add(key)
        else:
            _fold_other(out, key, e)
        if e.type != "order_completed":  # completed orders are shown from customer_order
            out.timeline.append((*key, e.occurred_at, e.event_id, e.type, timeline_summary(e.payload)))
    return out


def _fold_other(out: BatchChanges, key: CustomerKey, e: Envelope) -> None:
    p = e.payload
    if e.type in INTEREST_TYPES:
        _contact(out, key, interest=(e.occurred_at, e.type.removesuffix("_requested").removesuffix("_captured")))
    elif e.type in ("interaction", "message_engagement"):
        outbound = p.get("direction") == "outbound" or p.get("kind") == "delivered"
        answered = p.get("direction", "inbound") == "inbound" if e.type == "interaction" else p.get("kind") in RESPONSES
        if outbound:
            _contact(out, key, contacted=e.occurred_at)
        elif answered:
            _contact(out, key, responded=e.occurred_at)
        if e.type == "interaction" and p.get("reason_code"):
            issue = IssueChange(p["reason_code"], p.get("outcome"), e.occurred_at, e.occurred_at)
            out.issues[(*key, reasons.CALL, e.event_id)] = issue
    elif e.type in ISSUE_TYPES:
        kind, ref_field = ISSUE_TYPES[e.type]
        ikey = (*key, kind, str(p.get(ref_field) or p.get("order_id") or e.event_id))
        out.issues[ikey] = merge_issue(out.issues.get(ikey), e)
    elif e.type in OPPORTUNITY_STATES:
        okey = (*key, str(p["opportunity_id"]))
        current = out.opportunities.get(okey)
        if current is None or e.occurred_at >= current.at:
            out.opportunities[okey] = OpportunityChange(e.occurred_at, OPPORTUNITY_STATES[e.type], dict(p))
    elif e.type == "cost_recorded":
        seen = out.seen[key]
        out.seen[key] = replace(seen, cost=seen.cost + (to_decimal(p.get("amount")) or Decimal(0)))
    elif e.type in ("consent_changed", "unsubscribed"):
        granted = bool(p.get("granted", False))
        channels = out.consent.setdefault(key, {})
        channel = str(p.get("channel", "all"))
        if channel not in channels or channels[channel][1] <= e.occurred_at:
            channels[channel] = (granted, e.occurred_at)


ISSUE_TYPES: dict[str, tuple[str, str]] = {
    "complaint_opened": (reasons.COMPLAINT, "complaint_id"),
    "complaint_resolved": (reasons.COMPLAINT, "complaint_id"),
    "delivery_failed": (reasons.DELIVERY_FAILED, "delivery_id"),
    "delivery_late": (reasons.DELIVERY_LATE, "delivery_id"),
    "support_ticket": (reasons.TICKET, "ticket_id"),
}


def merge_issue(current: IssueChange | None, e: Envelope) -> IssueChange:
    """Opening and resolution may come in any order; each only fills its own part."""
    p = e.payload
    resolves = e.type == "complaint_resolved" or (e.type == "support_ticket" and p.get("status") == "closed")
    reason = p.get("reason_code") or p.get("category") or p.get("reason")
    detail = p.get("description") or p.get("subject") or p.get("carrier")
    if current is None:
        current = IssueChange(None, None, None, None)
    opened = current.opened_at
    if not resolves or e.type == "support_ticket":
        opened = e.occurred_at if opened is None else min(opened, e.occurred_at)
    resolved = current.resolved_at
    if resolves:
        resolved = e.occurred_at if resolved is None else max(resolved, e.occurred_at)
    return IssueChange(current.reason_code or reason, current.detail or detail, opened, resolved)


def _contact(
    out: BatchChanges,
    key: CustomerKey,
    *,
    contacted: datetime | None = None,
    responded: datetime | None = None,
    interest: tuple[datetime, str] | None = None,
) -> None:
    c = out.contacts.get(key, Contact())
    if contacted is not None:
        c = replace(c, contacted_at=_later(c.contacted_at, contacted))
    if responded is not None:
        c = replace(c, responded_at=_later(c.responded_at, responded))
    if interest is not None and (c.interest_at is None or interest[0] >= c.interest_at):
        c = replace(c, interest_at=interest[0], interest_kind=interest[1])
    out.contacts[key] = c


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def timeline_summary(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in _NOT_IN_TIMELINE and v is not None}


def merge_profile(current: ProfileChange | None, e: Envelope) -> ProfileChange:
    """The newer event's fields win; the older one only fills what the newer left out."""
    fields = {k: e.payload[k] for k in PROFILE_FIELDS if e.payload.get(k) is not None}
    traits = dict(e.payload.get("traits") or {})
    if current is None:
        return ProfileChange(e.occurred_at, fields, traits)
    if e.occurred_at >= current.at:
        return ProfileChange(e.occurred_at, {**current.fields, **fields}, {**current.traits, **traits})
    return ProfileChange(current.at, {**fields, **current.fields}, {**traits, **current.traits})
