"""Lifecycle over HTTP: an old order lapses at once, a policy change moves the customer back, and
campaigns hear each transition on `customer-changes`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from cartera.stack import Stack
from tests.e2e.helpers import unique, wait_for_customer, wait_for_status


def post(stack: Stack, key: str, event: dict[str, Any]) -> None:
    r = httpx.post(f"{stack.services['ingest'].url}/v1/events", auth=(key, ""), json=event)
    assert r.status_code == 202, r.text


def days_ago(n: int) -> str:
    return (datetime.now(UTC) - timedelta(days=n)).isoformat()


def test_an_old_order_lapses_and_a_longer_suspension_point_brings_the_customer_back(
    stack: Stack, workspace: dict[str, str]
) -> None:
    segmenter = stack.services["segmenter"].url
    admin = {"Authorization": f"Bearer {workspace['admin']}"}
    cid = unique("c")
    post(stack, workspace["write"], {"type": "order_completed", "customer_id": cid, "occurred_at": days_ago(200),
                                     "order_id": "o1", "amount": 30})  # fmt: skip
    lapsed = wait_for_customer(stack, workspace["read"], cid, lambda c: c["status"] == "lapsed")
    assert "suspension point" in lapsed["status_reason"]

    current = wait_for_status(lambda: httpx.get(f"{segmenter}/policy", headers=admin), lambda s: s == 200).json()
    assert current["version"] == 0 and current["policy"]["suspension"]["mode"] == "adaptive"
    body = {"suspension": {"mode": "fixed", "days": 365}}
    changed = httpx.put(f"{segmenter}/policy", headers=admin, json=body)
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 1

    back = wait_for_customer(stack, workspace["read"], cid, lambda c: c["status"] == "active")
    assert [(h["from"], h["to"], h["policy_version"]) for h in back["status_history"]][:2] == [
        ("lapsed", "active", 1),
        ("prospect", "lapsed", 0),
    ]


def test_a_bad_policy_is_refused_naming_the_field(stack: Stack, workspace: dict[str, str]) -> None:
    url = f"{stack.services['segmenter'].url}/policy"
    admin = {"Authorization": f"Bearer {workspace['admin']}"}
    r = wait_for_status(
        lambda: httpx.put(url, headers=admin, json={"suspension": {"mode": "fixed", "days": 0}}), lambda s: s != 401
    )
    assert r.status_code == 422
    assert "suspension.days" in r.text
    reader = {"Authorization": f"Bearer {workspace['read']}"}
    read = wait_for_status(lambda: httpx.get(url, headers=reader), lambda s: s != 401)
    assert read.status_code == 403


def test_each_transition_reaches_customer_changes_on_the_broker(stack: Stack, workspace: dict[str, str]) -> None:
    cid = unique("c")
    post(stack, workspace["write"], {"type": "profile_updated", "customer_id": cid, "email": "ana@example.com"})
    post(stack, workspace["write"], {"type": "order_completed", "customer_id": cid, "occurred_at": days_ago(1),
                                     "order_id": "o1", "amount": 12})  # fmt: skip
    wait_for_customer(stack, workspace["read"], cid, lambda c: c["status"] == "new")
    messages = asyncio.run(read_changes(stack.bootstrap, f"{workspace['workspace_id']}:{cid}"))
    assert messages, "no customer-changes message for the customer"
    payload = messages[-1]["payload"]
    assert payload["customer"]["status"] == "new" and payload["customer"]["email"] == "ana@example.com"
    assert "status" in payload["changes"]


async def read_changes(bootstrap: str, key: str, timeout_s: float = 20) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        "customer-changes", bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not found and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                found += [orjson.loads(r.value) for r in records if r.key == key.encode() and r.value]
    finally:
        await consumer.stop()
    return found


def test_recomputing_the_portfolio_ranks_customers_into_tiers_and_pareto(
    stack: Stack, workspace: dict[str, str]
) -> None:
    segmenter = stack.services["segmenter"].url
    admin = {"Authorization": f"Bearer {workspace['admin']}"}
    amounts = {"big": 1000, "mid": 100, "small": 10}
    for cid, amount in amounts.items():
        post(stack, workspace["write"], {"type": "order_completed", "customer_id": cid, "occurred_at": days_ago(3),
                                         "order_id": f"o-{cid}", "amount": amount})  # fmt: skip
    for cid in amounts:
        wait_for_customer(stack, workspace["read"], cid, lambda c: c["order_count"] == 1)
    run = wait_for_status(lambda: httpx.post(f"{segmenter}/portfolio/recompute", headers=admin), lambda s: s != 401)
    assert run.status_code == 200, run.text
    assert run.json()["customers"] == 3
    big = wait_for_customer(stack, workspace["read"], "big", lambda c: c["classification"]["tier"] is not None)
    assert big["classification"]["pareto"] is True  # 1000 of 1110 is over 80 %
    small = wait_for_customer(stack, workspace["read"], "small", lambda c: True)
    assert small["classification"]["pareto"] is False
    assert big["classification"]["tier"] != small["classification"]["tier"]
