"""Ingest with several worker processes: every request lands somewhere, and /metrics counts them all."""

from __future__ import annotations

import re

import httpx

from cartera.stack import Stack
from tests.e2e.helpers import unique, wait_for_status


def intake_accepted(text: str) -> float:
    found = re.findall(r'cartera_intake_events_total\{result="accepted",type="order_completed"\} ([0-9.e+]+)', text)
    found += re.findall(r'cartera_intake_events_total\{type="order_completed",result="accepted"\} ([0-9.e+]+)', text)
    return sum(float(v) for v in found)


def test_metrics_add_up_every_workers_count(stack: Stack, workspace: dict[str, str]) -> None:
    shared = stack.services["ingest"]
    ingest = stack.start("ingest", INGEST_WORKERS="2")  # a second ingest, on its own port
    try:
        before = intake_accepted(httpx.get(f"{ingest.url}/metrics").text)
        batch = unique("w")
        posts = 40  # many separate connections, so both workers take some
        for i in range(posts):
            r = wait_for_status(
                lambda i=i: httpx.post(
                    f"{ingest.url}/v1/events",
                    auth=(workspace["write"], ""),
                    json=[
                        {
                            "type": "order_completed",
                            "customer_id": f"{batch}-{i}",
                            "order_id": f"{batch}-{i}-{k}",
                            "amount": 5,
                        }
                        for k in range(5)
                    ],  # fmt: skip
                ),
                lambda s: s != 401,
            )
            assert r.status_code == 202, r.text
        after = intake_accepted(httpx.get(f"{ingest.url}/metrics").text)
        assert after - before == posts * 5
    finally:
        ingest.stop()
        stack.services["ingest"] = shared  # the other tests keep the stack's own
