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

CustomerKey = tuple[str, str]
OrderKey = tuple[str, str, str]

PROFILE_FIELDS = ("name", "email", "phone", "locale", "time_zone", "industry", "company_size", "region", "country")


@dataclass(frozen=True, slots=True)
class OrderChange:
    amount: Decimal | None = None
    currency: str | None = None
    margin: Decimal | None = None
    coupon_code: str | None = None
    occurred_at: datetime | None = None
    refunded: Decimal = Decimal(0)
    completed: bool = False
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class ProfileChange:
    at: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Seen:
    first: datetime
    last: datetime


@dataclass
class BatchChanges:
    seen: dict[CustomerKey, Seen] = field(default_factory=dict)
    orders: dict[OrderKey, OrderChange] = field(default_factory=dict)
    profiles: dict[CustomerKey, ProfileChange] = field(default_factory=dict)


def fold(events: Iterable[Envelope]) -> BatchChanges:
    out = BatchChanges()
    for e in events:
        key = (e.workspace_id, e.customer_id)
        seen = out.seen.get(key)
        out.seen[key] = (
            Seen(min(seen.first, e.occurred_at), max(seen.last, e.occurred_at))
            if seen
            else Seen(e.occurred_at, e.occurred_at)
        )
        if e.type in ("order_completed", "order_refunded", "order_cancelled"):
            okey = (e.workspace_id, e.customer_id, str(e.payload["order_id"]))
            out.orders[okey] = apply_order_event(out.orders.get(okey, OrderChange()), e)
        elif e.type == "profile_updated":
            out.profiles[key] = merge_profile(out.profiles.get(key), e)
    return out


def apply_order_event(current: OrderChange, e: Envelope) -> OrderChange:
    p = e.payload
    if e.type == "order_completed":
        if current.completed and current.occurred_at is not None and current.occurred_at > e.occurred_at:
            return current  # a newer version of the order is already in this batch
        return replace(
            current,
            amount=_dec(p.get("amount")),
            currency=p.get("currency"),
            margin=_dec(p.get("margin")),
            coupon_code=p.get("coupon_code"),
            occurred_at=e.occurred_at,
            completed=True,
        )
    if e.type == "order_refunded":
        return replace(current, refunded=current.refunded + (_dec(p.get("amount")) or Decimal(0)))
    return replace(current, cancelled=True)


def merge_profile(current: ProfileChange | None, e: Envelope) -> ProfileChange:
    """The newer event's fields win; the older one only fills what the newer left out."""
    fields = {k: e.payload[k] for k in PROFILE_FIELDS if e.payload.get(k) is not None}
    traits = dict(e.payload.get("traits") or {})
    if current is None:
        return ProfileChange(e.occurred_at, fields, traits)
    if e.occurred_at >= current.at:
        return ProfileChange(e.occurred_at, {**current.fields, **fields}, {**current.traits, **traits})
    return ProfileChange(current.at, {**fields, **current.fields}, {**traits, **current.traits})


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
