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
    assert httpx.get(f"{scoring.url}/scores/nobody", headers=reader).status_code == 404
    refused = httpx.post(f"{scoring.url}/models/refit", headers=reader, json={})
    assert refused.status_code == 403
