"""The README's first steps, driven over HTTP the way a new user would."""

from __future__ import annotations

import httpx

from cartera.stack import Stack
from tests.e2e.helpers import wait_for_customer


def test_posted_order_shows_on_the_customer(stack: Stack, workspace: dict[str, str]) -> None:
    ingest = stack.services["ingest"].url
    order = {
        "type": "order_completed",
        "customer_id": "c-1",
        "occurred_at": "2026-11-20T10:00:00Z",
        "order_id": "o-1",
        "amount": 42.5,
        "currency": "EUR",
    }
    r = httpx.post(f"{ingest}/v1/events", auth=(workspace["write"], ""), json=order)
    assert r.status_code == 202, r.text
    assert len(r.json()["accepted"]) == 1

    customer = wait_for_customer(stack, workspace["read"], "c-1", lambda c: c["order_count"] == 1)
    assert customer["revenue"] == "42.5000"
    assert customer["last_order_at"].startswith("2026-11-20T10:00:00")
    assert customer["workspace_id"] == workspace["workspace_id"]


def test_another_workspace_cannot_read_the_customer(stack: Stack, workspace: dict[str, str]) -> None:
    ingest = stack.services["ingest"].url
    r = httpx.post(
        f"{ingest}/v1/events",
        auth=(workspace["write"], ""),
        json={"type": "profile_updated", "customer_id": "secret", "name": "Ana"},
    )
    assert r.status_code == 202
    wait_for_customer(stack, workspace["read"], "secret", lambda c: c["profile"]["name"] == "Ana")
    other = httpx.get(f"{stack.services['segmenter'].url}/customers/secret", auth=(stack.keys["read"], ""))
    assert other.status_code == 404
