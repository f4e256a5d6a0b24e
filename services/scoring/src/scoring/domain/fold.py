"""Folds a batch of messages into what scoring keeps beyond the orders: profiles, daily activity
(engagement and cost to serve), the segmenter's standing of each customer, and comebacks.

Several messages for one row in a batch are merged here, because one `INSERT … ON CONFLICT DO
UPDATE` cannot touch the same row twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from cartera_common.events import Envelope
from cartera_common.events.changes import CUSTOMER_CHANGED, CustomerChanged

CustomerKey = tuple[str, str]
ActivityKey = tuple[str, str, str, date]  # workspace, customer, kind, UTC day

# Event type → engagement kind; interactions and message engagement are mapped in `_kind`.
INTEREST = {"lead_captured": "lead", "demo_requested": "demo", "trial_requested": "trial", "quote_requested": "quote"}
OPENED_CLICKED = {"opened": "opened", "clicked": "clicked"}
COST = "cost"
PROFILE_UPDATES = ("industry", "company_size", "region", "country")  # what `profile_updated` sets
AWAY = ("lapsed", "lost")


@dataclass(frozen=True, slots=True)
class ProfilePatch:
    fields: dict[str, str] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Activity:
    count: int = 0
    amount: Decimal = Decimal(0)


@dataclass
class Signals:
    profiles: dict[CustomerKey, ProfilePatch] = field(default_factory=dict)
    activity: dict[ActivityKey, Activity] = field(default_factory=dict)
    erased: set[CustomerKey] = field(default_factory=set)
    touched: set[CustomerKey] = field(default_factory=set)  # whose scores may have moved


def _kind(e: Envelope) -> str | None:
    if e.type in INTEREST:
        return INTEREST[e.type]
    if e.type == "interaction" and e.payload.get("channel") == "visit":
        return "visit"
    if e.type == "message_engagement":
        return OPENED_CLICKED.get(str(e.payload.get("kind")))
    if e.type == "cost_recorded":
        return COST
    return None


def fold_signals(events: Iterable[Envelope]) -> Signals:
    """Profiles merged in arrival order (only the fields present change), activity counted per day."""
    out = Signals()
    for e in events:
        key = (e.workspace_id, e.customer_id)
        if e.type == "customer_erased":
            out.erased.add(key)
        elif e.type == "profile_updated":
            before = out.profiles.get(key, ProfilePatch())
            fields = {f: str(e.payload[f]) for f in PROFILE_UPDATES if e.payload.get(f) is not None}
            traits = e.payload.get("traits") or {}
            out.profiles[key] = ProfilePatch({**before.fields, **fields}, {**before.traits, **traits})
            out.touched.add(key)
        elif (kind := _kind(e)) is not None:
            akey = (*key, kind, e.occurred_at.astimezone(UTC).date())
            was = out.activity.get(akey, Activity())
            amount = Decimal(str(e.payload.get("amount") or 0)) if kind == COST else Decimal(0)
            out.activity[akey] = Activity(was.count + 1, was.amount + amount)
            out.touched.add(key)
    out.touched -= out.erased
    return out


@dataclass(frozen=True, slots=True)
class Standing:
    """What scoring keeps of the segmenter's snapshot: who the customer is in the portfolio."""

    at: datetime
    status: str
    tier: str | None
    pareto: bool
    industry: str | None
    segment: str | None


@dataclass
class Changes:
    standings: dict[CustomerKey, Standing] = field(default_factory=dict)  # the latest per customer
    lapsed: Counter[str] = field(default_factory=Counter)  # per workspace: customers who lapsed
    returned: Counter[str] = field(default_factory=Counter)  # and who came back


def comeback(changed: CustomerChanged) -> tuple[int, int]:
    """(lapses, returns) one status change adds to the workspace's history.

    A customer first seen reactivated (an imported history classified as of now) lapsed before
    too, unseen, so it counts as both; lapsed → lost is the same absence, not a new one.
    """
    if "status" not in changed.changes:
        return 0, 0
    before, now = changed.previous.get("status"), changed.customer.status
    lapses = int((now in AWAY or now == "reactivated") and before not in AWAY)
    return lapses, int(now == "reactivated")


def fold_changes(events: Iterable[Envelope]) -> Changes:
    """`customer_changed` messages; anything else on the topic is ignored. A malformed one raises."""
    out = Changes()
    for e in events:
        if e.type != CUSTOMER_CHANGED:
            continue
        changed = CustomerChanged.model_validate(e.payload)
        lapses, returns = comeback(changed)
        out.lapsed[e.workspace_id] += lapses
        out.returned[e.workspace_id] += returns
        key = (e.workspace_id, e.customer_id)
        current = out.standings.get(key)
        if current is None or e.occurred_at >= current.at:
            c = changed.customer
            out.standings[key] = Standing(e.occurred_at, c.status, c.tier, c.pareto, c.industry, c.segment)
    return out
