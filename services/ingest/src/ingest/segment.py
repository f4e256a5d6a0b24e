"""Segment Tracking API messages as flat Cartera events, so a Segment source can point at us unchanged.

Pure mapping, no I/O: the caller validates the result with `INCOMING_EVENT`. Nothing the sender
wrote is silently lost: properties a mapped event has no field for travel under `properties`,
identify/group traits without a profile field under `traits`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

Event = dict[str, Any]
Mapper = Callable[[Event, Event], Event]  # (properties, message) -> event; pops the properties it uses

_COUNTRY = re.compile(r"[A-Z]{2}")
_PRECISION = Decimal("0.0001")  # the catalogue's Money has four decimal places


class SegmentError(ValueError):
    """A message no Cartera event can express; `field` names the Segment field at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def segment_to_event(kind: str, message: dict[str, Any]) -> dict[str, Any]:
    """One flat, not yet validated Cartera event for one Segment call (`kind` is its type)."""
    if not isinstance(message, dict):
        raise SegmentError("message", "must be a JSON object")
    mapper = _KINDS.get(kind)
    if mapper is None:
        raise SegmentError("type", f"unsupported Segment call {kind!r}; expected one of {sorted(_KINDS)}")
    return {**_envelope(message), **mapper(message)}


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _compact(**fields: Any) -> Event:
    """Drops absent fields, so only what the sender said reaches a merge-on-update profile."""
    return {key: value for key, value in fields.items() if _present(value)}


def _required(value: Any, field: str, problem: str) -> Any:
    if value is None:
        raise SegmentError(field, problem)
    return value


def _first(mapping: Event, *keys: str) -> Any:
    """The first key that holds a usable value, the way Segment's own fallbacks read."""
    return next((mapping[key] for key in keys if _present(mapping.get(key))), None)


def _pop_first(*sources: tuple[Event, str]) -> Any:
    """Takes the first usable value out of its mapping; the others stay for `traits`/`properties`."""
    for mapping, key in sources:
        if _present(mapping.get(key)):
            return mapping.pop(key)
    return None


def _pop_text(mapping: Event, key: str) -> str | None:
    """Takes a string or integer id/label; other shapes stay behind rather than fail validation."""
    value = mapping.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(mapping.pop(key))


def _obj(mapping: Event, key: str) -> Event:
    """A copy of a nested object, so mapping can pop from it without touching the caller's message."""
    value = mapping.get(key)
    if value is not None and not isinstance(value, dict):
        raise SegmentError(key, "must be a JSON object")
    return dict(value or {})


def _context(message: Event, key: str | None = None) -> Event:
    """A copy of context (or one object in it); context is advisory, so a malformed one is ignored."""
    value = message.get("context")
    if key is not None and isinstance(value, dict):
        value = value.get(key)
    return dict(value) if isinstance(value, dict) else {}


def _nested(traits: Event, key: str) -> Event:
    """Lifts a nested trait object out for mapping; a non-object value stays in traits as it is."""
    value = traits.get(key)
    return dict(traits.pop(key)) if isinstance(value, dict) else {}


def _envelope(message: Event) -> Event:
    customer = _required(_first(message, "userId", "anonymousId"), "userId", "neither userId nor anonymousId is set")
    library = _context(message, "library").get("name")
    return _compact(
        customer_id=str(customer),
        event_id=None if message.get("messageId") is None else str(message["messageId"]),
        occurred_at=_first(message, "timestamp", "originalTimestamp", "sentAt"),
        source=library if isinstance(library, str) and library.strip() else "segment",
    )


def _person(traits: Event, context: Event) -> Event:
    name = _pop_first((traits, "name"))
    if name is None:
        parts = (
            _pop_first((traits, "firstName"), (traits, "first_name")),
            _pop_first((traits, "lastName"), (traits, "last_name")),
        )
        name = " ".join(str(part) for part in parts if part is not None)
    return _compact(
        name=name,
        email=_pop_first((traits, "email")),
        phone=_pop_first((traits, "phone")),
        locale=_pop_first((traits, "locale"), (context, "locale")),
        time_zone=_pop_first((traits, "timezone"), (context, "timezone")),
    )


def _firmographics(traits: Event, company: Event, address: Event) -> Event:
    size = _pop_first((traits, "employees"), (company, "employee_count"))
    return _compact(
        industry=_pop_first((traits, "industry"), (company, "industry")),
        company_size=None if size is None else str(size),
        region=_pop_first((address, "state"), (traits, "region")),
    )


def _identify(message: Event) -> Event:
    traits = _obj(message, "traits")
    company, address = _nested(traits, "company"), _nested(traits, "address")
    event: Event = {"type": "profile_updated", **_person(traits, _context(message))}
    event.update(_firmographics(traits, company, address))
    country = address.get("country")
    if isinstance(country, str) and _COUNTRY.fullmatch(country):
        event["country"] = address.pop("country")
    traits.update({key: rest for key, rest in (("company", company), ("address", address)) if rest})
    return _compact(**event, traits=traits or None)


def _group(message: Event) -> Event:
    group_id = _required(_first(message, "groupId"), "groupId", "a group call needs groupId")
    traits = _obj(message, "traits")
    address = _nested(traits, "address")
    event: Event = {"type": "profile_updated", **_firmographics(traits, {}, address)}
    if address:
        traits["address"] = address
    return {**event, "traits": {"group_id": str(group_id), **traits}}


def _alias(message: Event) -> Event:
    previous = _required(_first(message, "previousId"), "previousId", "an alias call needs previousId")
    return {"type": "profile_updated", "traits": {"previous_id": str(previous)}}


def _order_id(props: Event) -> str:
    order_id = _pop_text(props, "order_id") or _pop_text(props, "checkout_id")
    return str(_required(order_id, "properties.order_id", "order events need order_id or checkout_id"))


def _currency(props: Event) -> str:
    value = props.get("currency")
    if isinstance(value, str) and value.strip():
        return str(props.pop("currency")).strip().upper()
    return "USD"  # Segment's documented default


def _items(props: Event) -> list[Event]:
    products = props.pop("products", None) or []
    if not isinstance(products, list) or not all(isinstance(p, dict) for p in products):
        raise SegmentError("properties.products", "must be a list of objects")
    return [_item(dict(product)) for product in products]


def _item(product: Event) -> Event:
    return _compact(
        sku=_pop_text(product, "sku") or _pop_text(product, "product_id"),
        name=_pop_text(product, "name"),
        category=_pop_text(product, "category"),
        quantity=product.get("quantity"),
        unit_price=product.get("price"),
    )


def _items_total(items: list[Event]) -> str | None:
    """Sum of price x quantity, as a string so the dict stays JSON-ready; None when nothing is priced."""
    priced = [item for item in items if "unit_price" in item]
    if not priced:
        return None
    try:
        total = sum(Decimal(str(i["unit_price"])) * Decimal(str(i.get("quantity", 1))) for i in priced)
        return str(Decimal(total).quantize(_PRECISION))
    except InvalidOperation as exc:
        raise SegmentError("properties.products", "price and quantity must be numbers of sensible size") from exc


def _order(event_type: str, *, fallback: int | None) -> Mapper:
    """Order Completed/Refunded: amount is total, else revenue, else the priced products, else `fallback`."""

    def build(props: Event, message: Event) -> Event:
        event: Event = {"type": event_type, "order_id": _order_id(props), "currency": _currency(props)}
        event["items"] = _items(props)
        amount = _pop_first((props, "total"), (props, "revenue"))
        if amount is None:
            amount = _items_total(event["items"])
        if amount is None:
            amount = _required(fallback, "properties.total", f"{event_type} needs total, revenue or priced products")
        event["amount"] = amount
        margin, coupon = _pop_first((props, "margin")), _pop_text(props, "coupon")
        return _compact(**event, margin=margin, coupon_code=coupon)

    return build


def _order_cancelled(props: Event, message: Event) -> Event:
    event: Event = {"type": "order_cancelled", "order_id": _order_id(props), "currency": _currency(props)}
    return _compact(**event, amount=_pop_first((props, "total"), (props, "revenue")))


def _fields(base: Event, **renames: str) -> Mapper:
    """A mapper for events whose own fields are text properties under a known Segment name."""

    def build(props: Event, message: Event) -> Event:
        return _compact(**base, **{field: _pop_text(props, key) for field, key in renames.items()})

    return build


def _quote(props: Event, message: Event) -> Event:
    event = _fields({"type": "quote_requested"}, **_LEAD)(props, message)
    if _present(props.get("amount")):
        event.update(amount=props.pop("amount"), currency=_currency(props))
    return event


def _complaint(props: Event, message: Event) -> Event:
    complaint_id = _pop_text(props, "complaint_id") or _first(message, "messageId")
    complaint_id = str(
        _required(complaint_id, "properties.complaint_id", "a complaint needs complaint_id or messageId")
    )
    fields = {key: key for key in ("category", "reason_code", "severity", "description")}
    return _fields({"type": "complaint_opened", "complaint_id": complaint_id}, **fields)(props, message)


_LEAD = {"channel": "channel", "campaign": "campaign", "product": "product"}
_EMAIL = {"type": "message_engagement", "channel": "email"}
_EMAIL_FIELDS = {"message_id": "email_id", "campaign_id": "campaign_id", "url": "link_url"}
_TRACKED: dict[str, Mapper] = {
    "order completed": _order("order_completed", fallback=0),
    "order refunded": _order("order_refunded", fallback=None),  # a refund of unknown size is no refund
    "order cancelled": _order_cancelled,
    "order canceled": _order_cancelled,
    "lead captured": _fields({"type": "lead_captured"}, **_LEAD),
    "signed up": _fields({"type": "lead_captured"}, **_LEAD),
    "form submitted": _fields({"type": "lead_captured"}, **_LEAD),
    "demo requested": _fields({"type": "demo_requested"}, **_LEAD),
    "trial started": _fields({"type": "trial_requested"}, **_LEAD),
    "trial requested": _fields({"type": "trial_requested"}, **_LEAD),
    "quote requested": _quote,
    "email delivered": _fields({**_EMAIL, "kind": "delivered"}, **_EMAIL_FIELDS),
    "email opened": _fields({**_EMAIL, "kind": "opened"}, **_EMAIL_FIELDS),
    "email link clicked": _fields({**_EMAIL, "kind": "clicked"}, **_EMAIL_FIELDS),
    "email bounced": _fields({**_EMAIL, "kind": "bounced"}, **_EMAIL_FIELDS),
    "email marked as spam": _fields({**_EMAIL, "kind": "complained"}, **_EMAIL_FIELDS),
    "unsubscribed": _fields({"type": "unsubscribed", "channel": "email"}, campaign_id="campaign_id", reason="reason"),
    "complaint opened": _complaint,
}


def _track(message: Event) -> Event:
    name = message.get("event")
    if not isinstance(name, str) or not name.strip():
        raise SegmentError("event", "a track call needs an event name")
    props = _obj(message, "properties")
    mapper = _TRACKED.get(" ".join(name.lower().split()))  # case- and spacing-insensitive: sources spell them loosely
    if mapper is None:
        return {"type": "interaction", "channel": "visit", "direction": "inbound", "name": name, "properties": props}
    return _compact(**mapper(props, message), properties=props or None)


def _view(message: Event) -> Event:
    """page and screen: a visit, named as the app names it."""
    props = _obj(message, "properties")
    event: Event = {"type": "interaction", "channel": "visit", "direction": "inbound"}
    event.update(_compact(name=_first(message, "name"), url=_pop_text(props, "url")))
    return {**event, "properties": props}


_KINDS: dict[str, Callable[[Event], Event]] = {
    "identify": _identify,
    "track": _track,
    "page": _view,
    "screen": _view,
    "group": _group,
    "alias": _alias,
}
SEGMENT_KINDS: frozenset[str] = frozenset(_KINDS)
