"""Realistic order_completed events in Cartera's flat JSON, pre-encoded so the client costs little."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

WORKSPACE = "default"
_CATEGORIES = ("shoes", "shirts", "outdoor", "kitchen", "garden", "toys", "books")
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def order_event(rng: random.Random, *, customer_id: str, order_id: str, n: int) -> dict[str, Any]:
    """One order as a shop would post it: a couple of lines, sometimes a coupon."""
    quantity = rng.randint(1, 3)
    unit = round(rng.uniform(4, 180), 2)
    event: dict[str, Any] = {
        "type": "order_completed",
        "customer_id": customer_id,
        "occurred_at": (_EPOCH + timedelta(seconds=n * 7)).isoformat().replace("+00:00", "Z"),
        "order_id": order_id,
        "amount": round(unit * quantity + 4.95, 2),
        "currency": "EUR",
        "source": "shop",
        "items": [
            {
                "sku": f"sku-{rng.randint(1, 5000):05d}",
                "category": rng.choice(_CATEGORIES),
                "quantity": quantity,
                "unit_price": unit,
            }
        ],
    }
    if rng.random() < 0.1:
        event["coupon_code"] = "WINBACK10"
    return event


@dataclass(frozen=True)
class Workload:
    """The throughput run's events and the HTTP bodies of `batch` events each."""

    run_id: str
    events: list[dict[str, Any]]
    batch: int

    @classmethod
    def generate(cls, *, run_id: str, events: int, customers: int, batch: int, seed: int = 7) -> Workload:
        rng = random.Random(seed)
        items = [
            order_event(rng, customer_id=f"c-{rng.randrange(customers):06d}", order_id=f"o-{run_id}-{n:07d}", n=n)
            for n in range(events)
        ]
        return cls(run_id, items, batch)

    def bodies(self) -> list[bytes]:
        return [orjson.dumps(self.events[i : i + self.batch]) for i in range(0, len(self.events), self.batch)]
