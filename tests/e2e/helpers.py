"""Shared steps for the end-to-end tests: waiting on what the running system shows over HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from cartera.stack import Stack


def unique(prefix: str) -> str:
    """A customer id no other test uses, so assertions never see another test's events."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for_customer(
    stack: Stack, key: str, customer_id: str, predicate: Any, timeout_s: float = 20
) -> dict[str, Any]:
    url = f"{stack.services['segmenter'].url}/customers/{customer_id}"
    deadline = time.monotonic() + timeout_s
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        last = httpx.get(url, headers={"Authorization": f"Bearer {key}"})
        if last.status_code == 200 and predicate(last.json()):
            return dict(last.json())
        time.sleep(0.1)
    raise AssertionError(f"customer {customer_id} never matched; last answer {last and last.text}")


def wait_for_status(
    request: Callable[[], httpx.Response], accept: Callable[[int], bool], timeout_s: float = 20
) -> httpx.Response:
    """Repeats a request until its status is one `accept` takes; keys reach each service eventually."""
    deadline = time.monotonic() + timeout_s
    last = request()
    while not accept(last.status_code) and time.monotonic() < deadline:
        time.sleep(0.2)
        last = request()
    assert accept(last.status_code), f"never got the expected status; last {last.status_code} {last.text}"
    return last


def settled_customer(stack: Stack, keys: dict[str, str], customer_id: str) -> dict[str, Any]:
    """The customer once every event posted so far for it was applied.

    Posts a profile marker with a fresh name and waits for it: one customer's events keep
    their order on one partition, so anything posted earlier has been applied by then.
    """
    marker = unique("marker")
    r = httpx.post(
        f"{stack.services['ingest'].url}/v1/events",
        auth=(keys["write"], ""),
        json={"type": "profile_updated", "customer_id": customer_id, "name": marker},
    )
    assert r.status_code == 202, r.text
    return wait_for_customer(stack, keys["read"], customer_id, lambda c: c["profile"]["name"] == marker)
