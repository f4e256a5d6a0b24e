"""The variables a message template sees: the customer's relationship in words, the offer, the links."""

from __future__ import annotations

from datetime import datetime

from campaigns.domain.model import Offer, Step
from cartera_common.events.changes import CustomerSnapshot

# How the segmenter records a leave reason ("kind:reason_code"), in words a customer can read.
_REASON_KINDS: dict[str, tuple[str, str]] = {
    # kind: (phrase without a code, phrase with "{code}")
    "complaint": ("your complaint", "your complaint about {code}"),
    "delivery_failed": ("a delivery that never reached you", "a delivery that never reached you ({code})"),
    "delivery_late": ("a late delivery", "a late delivery ({code})"),
    "support_ticket": ("a support request", "your support request about {code}"),
    "call_reason": ("what you told us when we spoke", "what you told us about {code}"),
}
# What the business did about each kind of problem: default copy that a custom template can replace.
_CHANGES: dict[str, str] = {
    "delivery": "We have changed how we pack and track every order, and we now tell you the day it leaves us.",
    "complaint": "Your complaint went to the whole team, and we have changed how we check every order before it ships.",
    "support_ticket": "We have reworked how we answer support requests, so you reach someone who can fix things quickly.",
    "call_reason": "We took what you told us seriously and have made changes because of it.",
}

VARIABLES = frozenset(
    {
        "customer",
        "name",
        "first_name",
        "customer_since",
        "order_count",
        "orders",
        "favourite_category",
        "months_away",
        "revenue",
        "relationship",
        "leave_reasons",
        "leave_reasons_text",
        "what_changed",
        "offer",
        "offer_description",
        "coupon",
        "call_to_action",
        "unsubscribe_url",
        "campaign_name",
        "channel",
        "template_id",
    }
)


def _words(code: str) -> str:
    return code.replace("_", " ").replace("-", " ").strip().lower()


def reason_phrase(reason: str) -> str:
    """'delivery_late:courier' -> 'a late delivery (courier)'; unknown kinds are put in words as they are."""
    kind, _, code = reason.partition(":")
    code = "" if code in ("", "unspecified") else _words(code)
    plain, coded = _REASON_KINDS.get(kind, (_words(kind), _words(kind) + " ({code})"))
    return coded.format(code=code) if code else plain


def join_words(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def what_changed(reasons: list[str]) -> str:
    kinds = {r.partition(":")[0] for r in reasons}
    keys = ["delivery"] if kinds & {"delivery_late", "delivery_failed"} else []
    keys += [k for k in ("complaint", "support_ticket", "call_reason") if k in kinds]
    return " ".join(_CHANGES[k] for k in keys[:2])


def offer_description(offer: Offer) -> str:
    """'10 % off your next order', the incentive's label, or '' for no offer."""
    if offer.kind == "percent_off" and offer.percent is not None:
        return f"{offer.percent:g} % off your next order"
    if offer.kind == "incentive":
        return offer.label or "a welcome-back gift"
    return ""


def _months_between(earlier: datetime, later: datetime) -> int:
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    return max(0, months - (later.day < earlier.day))


def relationship(customer: CustomerSnapshot) -> str:
    """'customer since 2023, 14 orders, mostly flowers', or as much of it as is known."""
    parts = []
    if customer.customer_since is not None:
        parts.append(f"customer since {customer.customer_since.year}")
    if customer.order_count > 0:
        parts.append(f"{customer.order_count} order{'s' if customer.order_count != 1 else ''}")
    if customer.favourite_category:
        parts.append(f"mostly {customer.favourite_category}")
    return ", ".join(parts)


def message_context(
    customer: CustomerSnapshot,
    *,
    campaign_name: str,
    step: Step,
    coupon: str | None,
    unsubscribe_url: str,
    now: datetime,
) -> dict[str, object]:
    """Everything a template may use; `step` is the step as this variant sends it."""
    name = (customer.name or "").strip()
    reasons = [reason_phrase(r) for r in customer.leave_reasons]
    last = customer.last_order_at
    return {
        "customer": customer.model_dump(mode="json"),
        "name": name,
        "first_name": name.split()[0] if name else "there",
        "customer_since": customer.customer_since.year if customer.customer_since else None,
        "order_count": customer.order_count,
        "orders": f"{customer.order_count} order{'s' if customer.order_count != 1 else ''}",
        "favourite_category": customer.favourite_category,
        "months_away": _months_between(last, now) if last is not None else None,
        "revenue": f"{customer.revenue:,.2f}",
        "relationship": relationship(customer),
        "leave_reasons": reasons,
        "leave_reasons_text": join_words(reasons),
        "what_changed": what_changed(customer.leave_reasons),
        "offer": {**step.offer.model_dump(mode="json"), "description": offer_description(step.offer)},
        "offer_description": offer_description(step.offer),
        "coupon": coupon,
        "call_to_action": step.call_to_action,
        "unsubscribe_url": unsubscribe_url,
        "campaign_name": campaign_name,
        "channel": step.channel,
        "template_id": step.template_id,
    }
