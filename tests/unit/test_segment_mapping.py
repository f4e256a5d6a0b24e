"""Segment Tracking API payloads become flat Cartera events the catalogue accepts."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from cartera_common.events import INCOMING_EVENT
from ingest.segment import SEGMENT_KINDS, SegmentError, segment_to_event

AT = "2024-05-01T10:00:00.000Z"


def _msg(**fields: Any) -> dict[str, Any]:
    return {"userId": "c-1", "messageId": "m-1", "timestamp": AT, **fields}


def _track(event: str, **properties: Any) -> dict[str, Any]:
    return segment_to_event("track", _msg(event=event, properties=properties))


def _valid(event: dict[str, Any]) -> Any:
    return INCOMING_EVENT.validate_python(event)


IDENTIFY = _msg(
    context={"library": {"name": "analytics.js"}, "locale": "es-ES", "timezone": "Europe/Madrid"},
    traits={
        "firstName": "Ana",
        "lastName": "García",
        "email": "ana@example.com",
        "phone": "+34 600 000 000",
        "industry": "retail",
        "company": {"name": "Acme", "employee_count": 42},
        "address": {"city": "Madrid", "state": "Madrid", "country": "ES"},
        "plan": "pro",
        "tags": ["vip", 1],
    },
)

SAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("identify", IDENTIFY),
    ("group", _msg(groupId="g-1", traits={"name": "Acme", "industry": "retail", "employees": 120})),
    ("alias", _msg(previousId="anon-1")),
    ("page", _msg(name="Pricing", properties={"url": "https://shop.example/pricing", "path": "/pricing"})),
    ("screen", _msg(name="Home", properties={"variant": "b"})),
    ("track", _msg(event="Order Completed", properties={"order_id": "o-1", "total": "42.50", "currency": "eur"})),
    ("track", _msg(event="Order Refunded", properties={"order_id": "o-1", "revenue": 10})),
    ("track", _msg(event="Order Cancelled", properties={"order_id": "o-1", "reason": "late"})),
    ("track", _msg(event="Signed Up", properties={"campaign": "spring", "plan": "trial"})),
    ("track", _msg(event="Demo Requested")),
    ("track", _msg(event="Trial Started", properties={"product": "pro"})),
    ("track", _msg(event="Quote Requested", properties={"amount": "1200", "currency": "eur"})),
    ("track", _msg(event="Email Link Clicked", properties={"email_id": "e-1", "link_url": "https://x.example"})),
    ("track", _msg(event="Unsubscribed", properties={"campaign_id": "cmp-1"})),
    ("track", _msg(event="Complaint Opened", properties={"severity": "high", "ticket": 9})),
    ("track", _msg(event="Video Played", properties={"video": "intro", "seconds": 12})),
]


def test_kinds_are_the_six_segment_calls() -> None:
    assert {"identify", "track", "page", "screen", "group", "alias"} == SEGMENT_KINDS


@pytest.mark.parametrize(("kind", "message"), SAMPLES, ids=[f"{k}-{m.get('event', '')}" for k, m in SAMPLES])
def test_every_mapped_event_validates_and_stays_json_ready(kind: str, message: dict[str, Any]) -> None:
    event = segment_to_event(kind, message)
    assert _valid(event).type == event["type"]
    json.dumps(event)


@pytest.mark.parametrize(("kind", "message"), SAMPLES)
def test_mapping_leaves_the_message_untouched(kind: str, message: dict[str, Any]) -> None:
    before = copy.deepcopy(message)
    segment_to_event(kind, message)
    assert message == before


def test_message_id_becomes_event_id_and_timestamp_occurred_at() -> None:
    event = segment_to_event("alias", _msg(previousId="p"))
    assert (event["event_id"], event["occurred_at"], event["source"]) == ("m-1", AT, "segment")


def test_timestamp_falls_back_to_original_timestamp_then_sent_at() -> None:
    message = {"userId": "c-1", "previousId": "p", "originalTimestamp": "2024-01-01T00:00:00Z", "sentAt": AT}
    assert segment_to_event("alias", message)["occurred_at"] == "2024-01-01T00:00:00Z"
    assert segment_to_event("alias", {"userId": "c-1", "previousId": "p", "sentAt": AT})["occurred_at"] == AT


def test_without_message_id_or_times_those_fields_are_omitted() -> None:
    event = segment_to_event("alias", {"userId": "c-1", "previousId": "p"})
    assert "event_id" not in event and "occurred_at" not in event


def test_anonymous_id_stands_in_when_there_is_no_user_id() -> None:
    event = segment_to_event("page", {"anonymousId": "anon-7", "userId": None, "name": "Home"})
    assert event["customer_id"] == "anon-7"


def test_numeric_user_id_is_a_string() -> None:
    assert segment_to_event("page", {"userId": 123})["customer_id"] == "123"


def test_a_message_without_any_id_is_refused() -> None:
    with pytest.raises(SegmentError) as error:
        segment_to_event("track", {"event": "Order Completed", "anonymousId": ""})
    assert error.value.field == "userId"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(SegmentError) as error:
        segment_to_event("screenshot", _msg())
    assert error.value.field == "type"


def test_a_track_without_event_name_is_refused() -> None:
    with pytest.raises(SegmentError) as error:
        segment_to_event("track", _msg(properties={}))
    assert error.value.field == "event"


def test_properties_that_are_not_an_object_are_refused() -> None:
    with pytest.raises(SegmentError, match="properties"):
        segment_to_event("track", _msg(event="Signed Up", properties=["x"]))


def test_identify_fills_the_profile_and_keeps_the_rest_as_traits() -> None:
    event = segment_to_event("identify", IDENTIFY)
    assert event["source"] == "analytics.js"
    assert {k: v for k, v in event.items() if k not in ("customer_id", "event_id", "occurred_at", "source")} == {
        "type": "profile_updated",
        "name": "Ana García",
        "email": "ana@example.com",
        "phone": "+34 600 000 000",
        "locale": "es-ES",
        "time_zone": "Europe/Madrid",
        "industry": "retail",
        "company_size": "42",
        "region": "Madrid",
        "country": "ES",
        "traits": {"plan": "pro", "tags": ["vip", 1], "company": {"name": "Acme"}, "address": {"city": "Madrid"}},
    }


def test_identify_prefers_its_own_traits_over_context_and_company() -> None:
    traits = {"name": "Ana", "firstName": "A", "timezone": "UTC", "employees": 7, "company": {"employee_count": 9}}
    message = _msg(traits=traits, context={"timezone": "Europe/Madrid"})
    event = segment_to_event("identify", message)
    assert (event["name"], event["time_zone"], event["company_size"]) == ("Ana", "UTC", "7")
    assert event["traits"] == {"firstName": "A", "company": {"employee_count": 9}}


def test_identify_keeps_a_country_that_is_not_an_iso_code_in_the_address() -> None:
    event = segment_to_event("identify", _msg(traits={"address": {"country": "Spain"}, "region": "Castilla"}))
    assert "country" not in event
    assert event["region"] == "Castilla"
    assert event["traits"] == {"address": {"country": "Spain"}}
    _valid(event)


def test_identify_without_traits_is_an_empty_profile_update() -> None:
    event = segment_to_event("identify", _msg())
    assert event["type"] == "profile_updated" and "traits" not in event


def test_group_maps_company_traits_and_keeps_the_group_id() -> None:
    message = _msg(groupId="g-1", traits={"name": "Acme", "industry": "retail", "employees": 120, "region": "EMEA"})
    event = segment_to_event("group", message)
    assert (event["type"], event["industry"], event["company_size"], event["region"]) == (
        "profile_updated",
        "retail",
        "120",
        "EMEA",
    )
    assert event["traits"] == {"group_id": "g-1", "name": "Acme"}


def test_group_without_group_id_is_refused() -> None:
    with pytest.raises(SegmentError) as error:
        segment_to_event("group", _msg(traits={"name": "Acme"}))
    assert error.value.field == "groupId"


def test_alias_records_the_previous_id() -> None:
    event = segment_to_event("alias", _msg(previousId="anon-1"))
    assert (event["type"], event["traits"]) == ("profile_updated", {"previous_id": "anon-1"})


def test_alias_without_previous_id_is_refused() -> None:
    with pytest.raises(SegmentError, match="previousId"):
        segment_to_event("alias", _msg())


@pytest.mark.parametrize("kind", ["page", "screen"])
def test_page_and_screen_are_visits(kind: str) -> None:
    message = _msg(name="Pricing", properties={"url": "https://shop.example/p", "referrer": "https://g.example"})
    event = segment_to_event(kind, message)
    assert (event["type"], event["channel"], event["direction"]) == ("interaction", "visit", "inbound")
    assert (event["name"], event["url"]) == ("Pricing", "https://shop.example/p")
    assert event["properties"] == {"referrer": "https://g.example"}


PRODUCTS = [
    {"product_id": "p-1", "sku": "SKU-1", "name": "Mug", "category": "Kitchen", "price": 9.5, "quantity": 2},
    {"product_id": "p-2", "name": "Pen", "price": "1.25", "brand": "Bic"},
]


def test_order_completed_maps_items_coupon_margin_and_currency() -> None:
    event = _track(
        "Order Completed", order_id="o-1", total=20.25, products=PRODUCTS, coupon="SPRING", margin=5, currency="eur"
    )
    assert (event["type"], event["order_id"], event["currency"]) == ("order_completed", "o-1", "EUR")
    assert event["amount"] == 20.25
    assert (event["coupon_code"], event["margin"]) == ("SPRING", 5)
    assert event["items"] == [
        {"sku": "SKU-1", "name": "Mug", "category": "Kitchen", "quantity": 2, "unit_price": 9.5},
        {"sku": "p-2", "name": "Pen", "unit_price": "1.25"},
    ]
    assert "properties" not in event
    order = _valid(event)
    assert order.items[1].quantity == 1 and order.items[1].unit_price == Decimal("1.25")


def test_order_amount_prefers_total_over_revenue() -> None:
    assert _track("Order Completed", order_id="o-1", total="30", revenue="25")["amount"] == "30"


def test_order_amount_falls_back_to_revenue_and_keeps_what_it_did_not_use() -> None:
    event = _track("Order Completed", order_id="o-1", revenue=25, subtotal=22, products=PRODUCTS)
    assert event["amount"] == 25
    assert event["properties"] == {"subtotal": 22}


def test_order_amount_is_computed_from_products_when_no_total_is_given() -> None:
    event = _track("Order Completed", order_id="o-1", products=PRODUCTS)
    assert event["amount"] == "20.2500"
    assert _valid(event).amount == Decimal("20.25")


def test_order_amount_is_zero_when_nothing_is_priced() -> None:
    event = _track("Order Completed", order_id="o-1")
    assert (event["amount"], event["currency"], event["items"]) == (0, "USD", [])
    _valid(event)


def test_order_id_falls_back_to_checkout_id() -> None:
    assert _track("Order Completed", checkout_id="ch-9", total=1)["order_id"] == "ch-9"


def test_an_order_without_order_or_checkout_id_is_refused() -> None:
    with pytest.raises(SegmentError) as error:
        _track("Order Completed", total=1)
    assert error.value.field == "properties.order_id"


def test_unpriceable_products_are_refused_when_they_are_the_only_amount() -> None:
    with pytest.raises(SegmentError, match="products"):
        _track("Order Completed", order_id="o-1", products=[{"price": "abc"}])


def test_order_refunded_uses_total_or_revenue() -> None:
    assert _track("Order Refunded", order_id="o-1", total="12.5")["amount"] == "12.5"
    event = _track("Order Refunded", order_id="o-1", revenue=8, currency="GBP")
    assert (event["type"], event["amount"], event["currency"]) == ("order_refunded", 8, "GBP")


def test_a_refund_without_any_amount_is_refused() -> None:
    with pytest.raises(SegmentError, match="total"):
        _track("Order Refunded", order_id="o-1")


def test_order_cancelled_keeps_amount_and_reason() -> None:
    event = _track("order cancelled", order_id="o-1", total=30, reason="late")
    assert (event["type"], event["amount"], event["properties"]) == ("order_cancelled", 30, {"reason": "late"})


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("Lead Captured", "lead_captured"),
        ("signed up", "lead_captured"),
        ("FORM SUBMITTED", "lead_captured"),
        ("Demo Requested", "demo_requested"),
        ("Trial Started", "trial_requested"),
        ("trial requested", "trial_requested"),
        ("Quote Requested", "quote_requested"),
    ],
)
def test_lead_events_map_case_insensitively(name: str, event_type: str) -> None:
    event = _track(name, campaign="spring", channel="web", form="contact")
    assert (event["type"], event["campaign"], event["channel"]) == (event_type, "spring", "web")
    assert event["properties"] == {"form": "contact"}
    _valid(event)


def test_quote_requested_carries_its_amount() -> None:
    event = _track("Quote Requested", amount="1200", currency="eur")
    assert (event["amount"], event["currency"]) == ("1200", "EUR")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Email Delivered", "delivered"),
        ("Email Opened", "opened"),
        ("Email Link Clicked", "clicked"),
        ("Email Bounced", "bounced"),
        ("Email Marked as Spam", "complained"),
    ],
)
def test_email_events_are_message_engagement(name: str, kind: str) -> None:
    event = _track(name, email_id="e-1", campaign_id="cmp-1", email_subject="Hi")
    assert (event["type"], event["kind"], event["channel"]) == ("message_engagement", kind, "email")
    assert (event["message_id"], event["campaign_id"], event["properties"]) == ("e-1", "cmp-1", {"email_subject": "Hi"})
    _valid(event)


def test_unsubscribed_is_an_email_unsubscribe() -> None:
    event = _track("Unsubscribed", campaign_id="cmp-1")
    assert (event["type"], event["channel"], event["campaign_id"]) == ("unsubscribed", "email", "cmp-1")


def test_complaint_id_comes_from_properties_else_message_id() -> None:
    assert _track("Complaint Opened", complaint_id="k-1")["complaint_id"] == "k-1"
    event = _track("Complaint Opened", severity="high")
    assert (event["type"], event["complaint_id"], event["severity"]) == ("complaint_opened", "m-1", "high")


def test_a_complaint_without_any_id_is_refused() -> None:
    with pytest.raises(SegmentError, match="complaint_id"):
        segment_to_event("track", {"userId": "c-1", "event": "Complaint Opened"})


def test_any_other_track_is_a_named_visit_with_its_properties() -> None:
    event = _track("Video Played", video="intro", seconds=12)
    assert {k: event[k] for k in ("type", "channel", "direction", "name", "properties")} == {
        "type": "interaction",
        "channel": "visit",
        "direction": "inbound",
        "name": "Video Played",
        "properties": {"video": "intro", "seconds": 12},
    }
    assert _valid(event).model_extra == {"name": "Video Played", "properties": {"video": "intro", "seconds": 12}}
