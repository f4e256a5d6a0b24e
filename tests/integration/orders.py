"""Generated order streams whose expected effect on customers is known exactly."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from cartera_common.settings import libpq_url


@dataclass
class Ledger:
    """What the posted events must add up to: a double-applied refund shows up in revenue."""

    prefix: str
    orders: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    revenue: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    events: int = 0

    def expected(self) -> dict[str, tuple[int, Decimal]]:
        return {c: (self.orders[c], self.revenue[c]) for c in self.orders}

    def batch(self, start: int, size: int, customers: int = 40) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for n in range(start, start + size):
            cid = f"{self.prefix}-{n % customers}"
            amount = Decimal(10 + n % 7)
            when = f"2026-{1 + n % 11:02d}-{1 + n % 27:02d}T10:00:00Z"
            out.append(
                {
                    "type": "order_completed",
                    "customer_id": cid,
                    "order_id": f"o{n}",
                    "amount": str(amount),
                    "occurred_at": when,
                }
            )
            out.append(
                {"type": "order_refunded", "customer_id": cid, "order_id": f"o{n}", "amount": "1", "occurred_at": when}
            )
            self.orders[cid] += 1
            self.revenue[cid] += amount - 1
            self.events += 2
        return out


def post(ingest_url: str, key: str, events: list[dict[str, Any]]) -> None:
    r = httpx.post(f"{ingest_url}/v1/events", auth=(key, ""), json=events, timeout=30)
    assert r.status_code == 202, r.text


async def customer_totals(database_url: str, workspace: str, prefix: str) -> dict[str, tuple[int, Decimal]]:
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        rows = await conn.fetch(
            "SELECT customer_id, order_count, revenue FROM segmenter.customer WHERE workspace_id = $1 AND customer_id LIKE $2",
            workspace,
            prefix + "-%",
        )
    finally:
        await conn.close()
    return {r["customer_id"]: (r["order_count"], r["revenue"]) for r in rows}


async def wait_until(check: Callable[[], Any], *, timeout_s: float, what: str) -> Any:
    """Polls an async check until it returns a truthy value; the deadline only bounds a hang."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def assert_applied_exactly_once(
    database_url: str, workspace: str, ledger: Ledger, timeout_s: float = 120
) -> None:
    expected = ledger.expected()

    async def matches() -> bool:
        got = await customer_totals(database_url, workspace, ledger.prefix)
        return got == expected

    try:
        await wait_until(matches, timeout_s=timeout_s, what="every event applied once")
    except AssertionError:
        got = await customer_totals(database_url, workspace, ledger.prefix)
        diff = {c: (got.get(c), expected[c]) for c in expected if got.get(c) != expected[c]}
        raise AssertionError(f"customers differ (got, expected): {diff}") from None
