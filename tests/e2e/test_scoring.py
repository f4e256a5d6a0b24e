"""Orders posted through ingest become a fitted model and scores readable over HTTP."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from cartera.stack import Stack
from tests.e2e.helpers import wait_for_status


def test_orders_through_ingest_are_fitted_and_scored(stack: Stack, workspace: dict[str, str]) -> None:
    scoring = stack.services.get("scoring") or stack.start("scoring")
    rng = random.Random(5)
    start = datetime.now(UTC) - timedelta(days=400)
    events: list[dict[str, Any]] = []
    for c in range(60):  # each buys at their own pace around their own basket, until they silently leave
        day, rate, leave, spend = (
            rng.uniform(0, 250),
            rng.uniform(0.01, 0.1),
            rng.uniform(0.1, 0.5),
            rng.gammavariate(4, 12),
        )
        k = 0
        while day < 400:
            at = start + timedelta(days=day)
            events.append({"type": "order_completed", "customer_id": f"s{c}", "occurred_at": at.isoformat(),
                           "order_id": f"s{c}-{k}", "amount": round(rng.gammavariate(6, spend / 6), 2)})  # fmt: skip
            k += 1
            if rng.random() < leave:
                break
            day += rng.expovariate(rate)
    r = httpx.post(f"{stack.services['ingest'].url}/v1/events", auth=(workspace["write"], ""), json=events)
    assert r.status_code == 202 and not r.json()["errors"], r.text

    admin = {"Authorization": f"Bearer {workspace['admin']}"}
    reader = {"Authorization": f"Bearer {workspace['read']}"}

    def refit() -> httpx.Response:
        return httpx.post(f"{scoring.url}/models/refit", headers=admin, json={}, timeout=60)

    # 401 until the new key reaches scoring, 409 until the first orders do; then refit until all 60 are in.
    done = wait_for_status(refit, lambda s: s == 200, timeout_s=60)
    deadline = 30
    while done.json()["customers"] < 60 and deadline:
        time.sleep(1)
        deadline -= 1
        done = refit()
    assert done.status_code == 200 and done.json()["customers"] == 60, done.text
    models = httpx.get(f"{scoring.url}/models", headers=reader).json()
    assert {m["kind"] for m in models} >= {"bgnbd"}
    score = httpx.get(f"{scoring.url}/scores/s0", headers=reader)
    assert score.status_code == 200, score.text
    assert 0 <= score.json()["p_alive"] <= 1
    assert datetime.fromisoformat(score.json()["next_purchase_at"]) > datetime.now(UTC) - timedelta(minutes=5)
    assert score.json()["clv"] is not None and score.json()["expected_order_value"] > 0
    assert httpx.get(f"{scoring.url}/scores/nobody", headers=reader).status_code == 404
    refused = httpx.post(f"{scoring.url}/models/refit", headers=reader, json={})
    assert refused.status_code == 403


def test_leads_are_ranked_with_their_channel_and_the_rules_move_them(stack: Stack, workspace: dict[str, str]) -> None:
    scoring = stack.services.get("scoring") or stack.start("scoring")
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = [
        {"type": "profile_updated", "customer_id": "hot", "industry": "56.10", "company_size": "11-50"},
        {"type": "profile_updated", "customer_id": "cold", "industry": "47.11"},
        {"type": "demo_requested", "customer_id": "hot", "occurred_at": now.isoformat()},
        {"type": "quote_requested", "customer_id": "hot", "occurred_at": now.isoformat()},
        {"type": "lead_captured", "customer_id": "cold", "occurred_at": (now - timedelta(days=90)).isoformat()},
    ]
    r = httpx.post(f"{stack.services['ingest'].url}/v1/events", auth=(workspace["write"], ""), json=events)
    assert r.status_code == 202 and not r.json()["errors"], r.text
    reader = {"Authorization": f"Bearer {workspace['read']}"}
    admin = {"Authorization": f"Bearer {workspace['admin']}"}

    def leads(**params: Any) -> httpx.Response:
        return httpx.get(f"{scoring.url}/leads", headers=reader, params=params)

    # Both leads scored, and the segmenter's standing (potential: they showed interest) reached scoring.
    deadline, page = time.monotonic() + 60, leads().json()
    while [i.get("status") for i in page.get("items", ())] != ["potential"] * 2 and time.monotonic() < deadline:
        time.sleep(0.3)
        page = leads().json()
    assert [i["customer_id"] for i in page["items"]] == ["hot", "cold"]
    hot = page["items"][0]
    assert hot["channel"] == "personal_email" and hot["engagement"] > 0 and hot["fit"] == 0
    assert [i["customer_id"] for i in leads(limit=1).json()["items"]] == ["hot"]
    second = leads(limit=1, cursor=leads(limit=1).json()["next_cursor"]).json()
    assert [i["customer_id"] for i in second["items"]] == ["cold"] and second["next_cursor"] is None

    rules = {"leads": {"fit_rules": [{"field": "industry", "values": ["56"], "match": "prefix", "points": 15}]}}
    assert httpx.get(f"{scoring.url}/rules", headers=admin).json()["version"] == 0
    put = httpx.put(f"{scoring.url}/rules", headers=admin, json=rules)
    assert put.status_code == 200 and put.json()["version"] == 1 and put.json()["published"] >= 1, put.text
    assert httpx.put(f"{scoring.url}/rules", headers=reader, json=rules).status_code == 403
    called = leads(channel="call").json()["items"]
    assert [i["customer_id"] for i in called] == ["hot"] and called[0]["fit"] == 15  # 15 + 41.3: a call
    one = httpx.get(f"{scoring.url}/scores/hot", headers=reader).json()
    assert one["lead"]["channel"] == "call" and one["p_alive"] is None and one["winback"] is None
