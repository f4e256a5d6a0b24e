"""The intake contract's answers to bad requests, and what a partly bad batch still delivers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from cartera.stack import Stack
from tests.e2e.helpers import settled_customer, unique, wait_for_customer

Keys = dict[str, str]


def order(customer_id: str, order_id: str, amount: Any, **extra: Any) -> dict[str, Any]:
    return {
        "type": "order_completed",
        "customer_id": customer_id,
        "occurred_at": "2026-03-01T09:00:00Z",
        "order_id": order_id,
        "amount": amount,
        "currency": "EUR",
        **extra,
    }


def post(stack: Stack, body: Any, key: str | None, **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.post(f"{stack.services['ingest'].url}/v1/events", json=body, headers=headers, **kwargs)


def test_a_missing_or_unknown_key_is_refused(stack: Stack, workspace: Keys) -> None:
    event = order(unique("c"), "o-1", 10)
    assert post(stack, event, None).status_code == 401
    assert post(stack, event, "ck_w_not-a-real-key").status_code == 401
    unknown_basic = httpx.post(f"{stack.services['ingest'].url}/v1/events", json=event, auth=("ck_w_nope", ""))
    assert unknown_basic.status_code == 401
    assert "WWW-Authenticate" in unknown_basic.headers


def test_a_write_key_works_as_basic_user_and_as_bearer_token(stack: Stack, workspace: Keys) -> None:
    ingest = stack.services["ingest"].url
    as_basic = httpx.post(f"{ingest}/v1/events", json=order(unique("c"), "o-1", 10), auth=(workspace["write"], ""))
    as_bearer = post(stack, order(unique("c"), "o-1", 10), workspace["write"])
    assert as_basic.status_code == 202, as_basic.text
    assert as_bearer.status_code == 202, as_bearer.text


def test_a_key_of_the_wrong_role_is_forbidden(stack: Stack, workspace: Keys) -> None:
    ingest = stack.services["ingest"].url
    assert post(stack, order(unique("c"), "o-1", 10), workspace["read"]).status_code == 403
    write = {"Authorization": f"Bearer {workspace['write']}"}
    assert httpx.post(f"{ingest}/v1/keys", headers=write, json={"role": "read"}).status_code == 403
    assert httpx.get(f"{ingest}/v1/keys", headers=write).status_code == 403
    assert httpx.delete(f"{ingest}/v1/keys/{workspace['read'][:10]}", headers=write).status_code == 403
    workspace_body = {"workspace_id": unique("ws"), "name": "x"}
    assert httpx.post(f"{ingest}/v1/workspaces", headers=write, json=workspace_body).status_code == 403


def test_an_unknown_content_type_is_unsupported(stack: Stack, workspace: Keys) -> None:
    r = httpx.post(
        f"{stack.services['ingest'].url}/v1/events",
        content=b"<event/>",
        headers={"Authorization": f"Bearer {workspace['write']}", "Content-Type": "application/xml"},
    )
    assert r.status_code == 415


def test_broken_json_is_a_bad_request_and_writes_nothing(stack: Stack, workspace: Keys) -> None:
    customer_id = unique("c")
    broken = json.dumps([order(customer_id, "o-1", 5)])[:-1] + ","  # an array cut off mid-way
    r = httpx.post(
        f"{stack.services['ingest'].url}/v1/events",
        content=broken.encode(),
        headers={"Authorization": f"Bearer {workspace['write']}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert settled_customer(stack, workspace, customer_id)["order_count"] == 0


def test_a_body_over_the_size_limit_is_too_large(stack: Stack, workspace: Keys) -> None:
    padding = b" " * (4 * 1024 * 1024 + 1)  # whitespace is valid JSON, so only the size is at fault
    r = httpx.post(
        f"{stack.services['ingest'].url}/v1/events",
        content=b"[" + padding + b"]",
        headers={"Authorization": f"Bearer {workspace['write']}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_a_streamed_body_over_the_size_limit_is_too_large(stack: Stack, workspace: Keys) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length, so the limit must hold while reading
        yield b"["
        for _ in range(5):
            yield b" " * (1024 * 1024)
        yield b"]"

    r = httpx.post(
        f"{stack.services['ingest'].url}/v1/events",
        content=chunks(),
        headers={"Authorization": f"Bearer {workspace['write']}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_a_batch_over_the_item_limit_is_too_large(stack: Stack, workspace: Keys) -> None:
    customer_id = unique("c")
    batch = [order(customer_id, f"o-{i}", 1) for i in range(1001)]
    assert post(stack, batch, workspace["write"]).status_code == 413
    assert post(stack, {"batch": batch}, workspace["write"]).status_code == 413
    assert settled_customer(stack, workspace, customer_id)["order_count"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [({"amount": -5}, "amount"), ({"type": "order_teleported"}, "type"), ({"currency": "euro"}, "currency")],
)
def test_a_single_invalid_event_names_the_field_at_fault(
    stack: Stack, workspace: Keys, change: dict[str, Any], field: str
) -> None:
    r = post(stack, order(unique("c"), "o-1", 10) | change, workspace["write"])
    assert r.status_code == 422
    errors = r.json()["detail"]
    assert [e["field"] for e in errors] == [field]
    assert errors[0]["problem"]


def test_a_body_that_is_neither_event_nor_batch_is_unprocessable(stack: Stack, workspace: Keys) -> None:
    assert post(stack, 42, workspace["write"]).status_code == 422


def test_a_partly_invalid_batch_accepts_the_valid_events_only(stack: Stack, workspace: Keys) -> None:
    customer_id = unique("c")
    batch = [
        order(customer_id, "o-1", "19.90"),
        order(customer_id, "o-2", -1),
        {"type": "order_teleported", "customer_id": customer_id},
        {"type": "profile_updated", "customer_id": customer_id, "name": "Lucía"},
    ]
    r = post(stack, batch, workspace["write"])
    assert r.status_code == 202, r.text
    answer = r.json()
    assert len(answer["accepted"]) == 2
    assert [(e["index"], [f["field"] for f in e["errors"]]) for e in answer["errors"]] == [
        (1, ["amount"]),
        (2, ["type"]),
    ]
    # The profile came after the invalid order on the same partition, so that order would show by now.
    customer = wait_for_customer(stack, workspace["read"], customer_id, lambda c: c["profile"]["name"] == "Lucía")
    assert customer["order_count"] == 1
    assert Decimal(customer["revenue"]) == Decimal("19.90")


def test_a_batch_without_a_valid_event_is_unprocessable_and_writes_nothing(stack: Stack, workspace: Keys) -> None:
    customer_id = unique("c")
    batch = [order(customer_id, "o-1", -1), order(customer_id, "o-2", "lots")]
    r = post(stack, {"batch": batch}, workspace["write"])
    assert r.status_code == 422
    assert [e["index"] for e in r.json()["detail"]] == [0, 1]
    assert settled_customer(stack, workspace, customer_id)["order_count"] == 0


def test_unknown_extra_fields_are_accepted_and_part_of_the_event(stack: Stack, workspace: Keys) -> None:
    event = order(unique("c"), "o-1", 10, loyalty_tier="gold")
    first = post(stack, event, workspace["write"])
    again = post(stack, event, workspace["write"])
    assert first.status_code == again.status_code == 202
    assert first.json()["accepted"] == again.json()["accepted"]
    assert (first.json()["new"], again.json()["new"]) == (1, 0)
    other_tier = post(stack, event | {"loyalty_tier": "silver"}, workspace["write"])
    assert other_tier.json()["accepted"] != first.json()["accepted"]


def test_an_event_posted_twice_with_its_event_id_counts_once(stack: Stack, workspace: Keys) -> None:
    customer_id = unique("c")
    event = order(customer_id, "o-1", 30, event_id=unique("evt"))
    assert post(stack, event, workspace["write"]).json()["new"] == 1
    assert post(stack, event, workspace["write"]).json()["new"] == 0
    customer = settled_customer(stack, workspace, customer_id)
    assert customer["order_count"] == 1
    assert Decimal(customer["revenue"]) == Decimal(30)


def test_an_event_posted_twice_without_event_id_but_with_its_time_counts_once(stack: Stack, workspace: Keys) -> None:
    customer_id = unique("c")
    event = order(customer_id, "o-1", 30)
    first, again = post(stack, event, workspace["write"]), post(stack, event, workspace["write"])
    assert first.json()["accepted"] == again.json()["accepted"]
    customer = settled_customer(stack, workspace, customer_id)
    assert customer["order_count"] == 1
    assert Decimal(customer["revenue"]) == Decimal(30)


def test_the_same_event_twice_in_one_batch_counts_once(stack: Stack, workspace: Keys) -> None:
    customer_id = unique("c")
    event = order(customer_id, "o-1", 30, event_id=unique("evt"))
    r = post(stack, [event, event], workspace["write"])
    assert r.status_code == 202, r.text
    assert r.json()["new"] == 1
    assert settled_customer(stack, workspace, customer_id)["order_count"] == 1
