"""Intake encodes each accepted event straight to its envelope's bytes: they must be exactly the
envelope consumers read, and a batch validated in one call must split the same as item by item."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cartera_common.events import INCOMING_EVENT, Envelope
from cartera_common.events.envelope import _CONTENT_NAMESPACE, content_event_id, encode_incoming
from ingest import intake

NOW = datetime(2026, 11, 25, 8, 30, 1, 250_000, tzinfo=UTC)
_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)


@given(workspace=_TEXT, body=st.binary(max_size=300))
def test_a_content_id_is_the_standard_version_5_uuid_of_workspace_and_body(workspace: str, body: bytes) -> None:
    digest = hashlib.sha1(_CONTENT_NAMESPACE.bytes + workspace.encode() + b":" + body, usedforsecurity=False).digest()
    assert content_event_id(workspace, body) == str(uuid.UUID(bytes=digest[:16], version=5))


def _reference_bytes(item: dict[str, Any], *, workspace: str, source: str | None) -> tuple[str, bytes]:
    """The envelope as a consumer would build it from the validated event, field by field."""
    event = INCOMING_EVENT.validate_python(item)
    data = event.model_dump(mode="json", exclude_none=True)
    payload = {k: v for k, v in data.items() if k not in ("type", "customer_id", "event_id", "occurred_at", "source")}
    encoded = encode_incoming(event, workspace_id=workspace, received_at=NOW, source=source)
    envelope = Envelope(
        event_id=encoded.event_id,
        type=data["type"],
        workspace_id=workspace,
        customer_id=event.customer_id,
        occurred_at=event.occurred_at or NOW,
        received_at=NOW,
        source=event.source or source,
        payload=payload,
    )
    return encoded.event_id, envelope.to_bytes()


_ORDERS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["order_completed", "order_refunded"]),
        "customer_id": _TEXT.filter(lambda s: s.strip() != ""),
        "order_id": st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20),
        "amount": st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False).map(str),
    },
    optional={
        "occurred_at": st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2030, 1, 1),
            timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]),
        ).map(datetime.isoformat),
        "event_id": st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
        "source": st.sampled_from(["shop", "pos"]),
        "currency": st.sampled_from(["EUR", "USD"]),
        "coupon_code": _TEXT,
        "items": st.lists(st.fixed_dictionaries({"sku": st.just("s-1"), "quantity": st.integers(1, 5)}), max_size=2),
        "store": _TEXT,  # an unknown field, kept in the payload
    },
)


@settings(max_examples=200)
@given(item=_ORDERS, workspace=st.sampled_from(["default", "w-2"]), source=st.sampled_from([None, "import"]))
def test_intake_bytes_are_exactly_the_envelope_consumers_read(
    item: dict[str, Any], workspace: str, source: str | None
) -> None:
    if "occurred_at" not in item and "event_id" not in item:
        item["event_id"] = "fixed"  # otherwise the id is a fresh UUID each time
    event_id, expected = _reference_bytes(item, workspace=workspace, source=source)
    event = INCOMING_EVENT.validate_python(item)
    encoded = encode_incoming(event, workspace_id=workspace, received_at=NOW, source=source)
    assert encoded.value == expected
    assert (encoded.event_id, encoded.key) == (event_id, f"{workspace}:{event.customer_id}")
    assert Envelope.from_bytes(encoded.value).payload["amount"] == str(Decimal(item["amount"]))


def test_a_batch_with_bad_items_splits_as_item_by_item_and_keeps_the_good_ones_in_order() -> None:
    good = {"type": "order_completed", "customer_id": "c-1", "occurred_at": "2026-11-20T10:00:00Z", "amount": 3}
    items: list[Any] = [
        good | {"order_id": "o-1"},
        good | {"order_id": "o-2", "amount": -1},
        "not an object",
        good | {"order_id": "o-3"},
    ]
    events, bad = intake.validate(items, workspace_id="w", received_at=NOW)
    assert [Envelope.from_bytes(e.value).payload["order_id"] for e in events] == ["o-1", "o-3"]
    assert [(index, [e["field"] for e in errors]) for index, errors in bad] == [(1, ["amount"]), (2, ["body"])]
    whole, none = intake.validate([items[0], items[3]], workspace_id="w", received_at=NOW)
    assert none == []
    assert [e.value for e in whole] == [e.value for e in events]
