"""A Segment source pointed at Cartera: its calls answer like Segment's and land on the customer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from cartera.stack import Stack
from tests.e2e.helpers import settled_customer, unique, wait_for_customer

Keys = dict[str, str]


def segment(stack: Stack, call: str, body: dict[str, Any], write_key: str | None) -> httpx.Response:
    """Posts the way Segment's SDKs do: the write key as Basic user with an empty password."""
    auth = (write_key, "") if write_key is not None else None
    return httpx.post(f"{stack.services['ingest'].url}/v1/{call}", json=body, auth=auth)


def identify(user_id: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user_id, "traits": traits}


def order_completed(user_id: str, order_id: str, total: Any, **extra: Any) -> dict[str, Any]:
    properties = {
        "order_id": order_id,
        "total": total,
        "currency": "eur",
        "products": [
            {"product_id": "p-1", "name": "Roses", "category": "flowers", "price": 20, "quantity": 2},
            {"sku": "vase-9", "name": "Vase", "price": 14.5},
        ],
    }
    return {"type": "track", "userId": user_id, "event": "Order Completed", "properties": properties, **extra}


def test_identify_then_an_order_shows_the_profile_and_the_order(stack: Stack, workspace: Keys) -> None:
    user = unique("seg")
    said = segment(stack, "identify", identify(user, name="Ana Pérez", email="ana@florist.es"), workspace["write"])
    tracked = segment(stack, "track", order_completed(user, "o-1", 54.5), workspace["write"])
    assert (said.status_code, said.json()) == (200, {"success": True})
    assert (tracked.status_code, tracked.json()) == (200, {"success": True})

    customer = wait_for_customer(stack, workspace["read"], user, lambda c: c["order_count"] == 1)
    assert customer["profile"]["name"] == "Ana Pérez"
    assert customer["profile"]["email"] == "ana@florist.es"
    assert Decimal(customer["revenue"]) == Decimal("54.5")


def test_an_order_without_total_is_worth_its_priced_products(stack: Stack, workspace: Keys) -> None:
    user = unique("seg")
    message = order_completed(user, "o-1", None)
    del message["properties"]["total"]
    assert segment(stack, "track", message, workspace["write"]).status_code == 200
    customer = wait_for_customer(stack, workspace["read"], user, lambda c: c["order_count"] == 1)
    assert Decimal(customer["revenue"]) == Decimal("54.5")  # 2 x 20 + 14.5


def test_a_batch_accepts_the_valid_messages_and_lists_the_invalid_ones(stack: Stack, workspace: Keys) -> None:
    user = unique("seg")
    no_order_id = order_completed(user, "o-2", 10)
    del no_order_id["properties"]["order_id"]
    batch = [
        identify(user, name="Bea"),
        {"type": "track", "userId": user, "properties": {}},
        order_completed(user, "o-1", 12),
        no_order_id,
        {"type": "teleport", "userId": user},
        order_completed("", "o-3", 12),
    ]
    r = segment(stack, "batch", {"batch": batch}, workspace["write"])
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    assert [(e["index"], e["errors"][0]["field"]) for e in r.json()["errors"]] == [
        (1, "event"),
        (3, "properties.order_id"),
        (4, "type"),
        (5, "userId"),
    ]
    customer = settled_customer(stack, workspace, user)
    assert customer["order_count"] == 1
    assert Decimal(customer["revenue"]) == Decimal(12)


def test_a_batch_of_only_invalid_messages_is_unprocessable(stack: Stack, workspace: Keys) -> None:
    r = segment(stack, "batch", {"batch": [{"type": "track", "userId": unique("seg")}]}, workspace["write"])
    assert r.status_code == 422
    assert r.json()["success"] is False


def test_the_write_key_may_travel_in_the_body_instead_of_a_header(stack: Stack, workspace: Keys) -> None:
    user = unique("seg")
    batched = segment(stack, "batch", {"writeKey": workspace["write"], "batch": [identify(user, name="Cai")]}, None)
    single = segment(stack, "track", {**order_completed(user, "o-1", 8), "writeKey": workspace["write"]}, None)
    assert (batched.status_code, single.status_code) == (200, 200)
    customer = wait_for_customer(stack, workspace["read"], user, lambda c: c["order_count"] == 1)
    assert customer["profile"]["name"] == "Cai"


def test_a_call_without_any_key_is_refused(stack: Stack, workspace: Keys) -> None:
    user = unique("seg")
    assert segment(stack, "identify", identify(user, name="Dan"), None).status_code == 401
    assert segment(stack, "batch", {"batch": [identify(user, name="Dan")]}, None).status_code == 401
    assert segment(stack, "identify", identify(user, name="Dan"), workspace["read"]).status_code == 403


def test_a_message_id_sent_twice_counts_once(stack: Stack, workspace: Keys) -> None:
    user = unique("seg")
    message = order_completed(user, "o-1", 25, messageId=unique("msg"), timestamp="2026-05-04T12:00:00Z")
    assert segment(stack, "track", message, workspace["write"]).status_code == 200
    assert segment(stack, "batch", {"batch": [message]}, workspace["write"]).status_code == 200
    customer = settled_customer(stack, workspace, user)
    assert customer["order_count"] == 1
    assert Decimal(customer["revenue"]) == Decimal(25)


def test_products_priced_beyond_any_amount_are_named_as_the_problem(stack: Stack, workspace: Keys) -> None:
    message = order_completed(unique("seg"), "o-1", None)
    message["properties"] = {"order_id": "o-1", "products": [{"sku": "gold", "price": 1e30}]}
    r = segment(stack, "track", message, workspace["write"])
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "properties.products"
