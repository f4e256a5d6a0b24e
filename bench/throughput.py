"""Intake and end-to-end throughput: batches posted by concurrent clients while the segmenter applies them."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson

from bench.cpu import CpuMeter
from bench.workload import WORKSPACE, order_event
from cartera_common.settings import libpq_url

_APPLIED = "SELECT coalesce(sum(order_count), 0) FROM segmenter.customer WHERE workspace_id = $1"
# Events the segmenter's consumer has committed, from its own /metrics: polling the sum above every
# 100 ms cost PostgreSQL 20 ms a time over 50,000 customers, a fifth of a core taken from the run it
# measured. The sum is still read once at the end, to check the orders really are in the tables.
_CONSUMED_METRIC = re.compile(rb"^cartera_consumed_events_total\{([^}]*)\} (\S+)$", re.MULTILINE)
_UNPUBLISHED = (
    "SELECT count(*) FROM ingest.outbox o, ingest.relay_state r "
    "WHERE r.relay = 'ingest' AND (o.txid, o.id) > (r.txid, r.last_id)"
)


@dataclass(frozen=True)
class ThroughputResult:
    posted: int
    new: int
    intake_s: float
    e2e_s: float
    applied_when_intake_done: int
    unpublished_when_intake_done: int
    cpu_intake: dict[str, float]
    cpu_drain: dict[str, float]
    cpu_seconds: dict[str, float]
    others: dict[str, float]

    @property
    def intake_rate(self) -> float:
        return self.posted / self.intake_s

    @property
    def e2e_rate(self) -> float:
        return self.posted / self.e2e_s


def _client(url: str, key: str, connections: int = 1) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=120,
    )


async def post_all(clients: Sequence[httpx.AsyncClient], bodies: Sequence[bytes]) -> tuple[int, float]:
    """Posts every body, one request in flight per client; returns (new events, time of the last 202)."""
    shared: Iterator[bytes] = iter(bodies)  # next() never awaits, so workers can share it
    new = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal new
        for body in shared:
            r = await client.post("/v1/events", content=body)
            if r.status_code != 202:
                raise RuntimeError(f"POST /v1/events answered {r.status_code}: {r.text[:500]}")
            new += int(orjson.loads(r.content)["new"])

    await asyncio.gather(*(worker(c) for c in clients))
    return new, time.perf_counter()


async def post_concurrently(url: str, key: str, bodies: Sequence[bytes], *, concurrency: int) -> tuple[int, float]:
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(_client(url, key)) for _ in range(concurrency)]
        return await post_all(clients, bodies)


async def applied_orders(conn: Any) -> int:
    return int(await conn.fetchval(_APPLIED, WORKSPACE))


async def applied_events(segmenter: httpx.AsyncClient) -> int:
    body = (await segmenter.get("/metrics")).raise_for_status().content
    return int(
        sum(
            float(value)
            for labels, value in _CONSUMED_METRIC.findall(body)
            if b'topic="events"' in labels and b'result="applied"' in labels
        )
    )


async def wait_applied(
    segmenter: httpx.AsyncClient, conn: Any, events: int, orders: int, *, timeout_s: float, poll_s: float = 0.1
) -> float:
    """Waits until the segmenter has applied `events` events in all and its tables count `orders`
    orders; returns the perf_counter time it saw the events applied."""
    deadline = time.perf_counter() + timeout_s
    while True:
        now = time.perf_counter()
        if await applied_events(segmenter) >= events:
            break
        if now > deadline:
            raise TimeoutError(f"segmenter applied {await applied_events(segmenter)} of {events} events")
        await asyncio.sleep(poll_s)
    while (counted := await applied_orders(conn)) < orders:  # committed with the events: at once, unless lost
        if time.perf_counter() > deadline:
            raise TimeoutError(f"segmenter's tables count {counted} of {orders} orders")
        await asyncio.sleep(poll_s)
    return now


async def warm_up(url: str, key: str, database_url: str, segmenter_url: str, *, run_id: str, events: int = 200) -> None:
    """Joins the segmenter's consumer group and fills caches and pools before anything is timed."""
    rng = random.Random(1)
    items = [order_event(rng, customer_id=f"warm-{n % 50}", order_id=f"w-{run_id}-{n}", n=n) for n in range(events)]
    conn: Any = await asyncpg.connect(libpq_url(database_url))
    try:
        async with httpx.AsyncClient(base_url=segmenter_url) as segmenter:
            before = await applied_events(segmenter), await applied_orders(conn)
            await post_concurrently(
                url, key, [orjson.dumps(items[i : i + 100]) for i in range(0, events, 100)], concurrency=2
            )
            await wait_applied(segmenter, conn, before[0] + events, before[1] + events, timeout_s=90)
    finally:
        await conn.close()


async def run_throughput(
    url: str,
    key: str,
    database_url: str,
    segmenter_url: str,
    bodies: Sequence[bytes],
    *,
    events: int,
    concurrency: int,
    meter: CpuMeter,
    on_posted: Callable[[float, dict[str, float]], None] | None = None,
    timeout_s: float = 600,
) -> ThroughputResult:
    """Times the posting (intake) and, from the same start, the segmenter catching up (end to end).

    `on_posted(events_per_s, cores_used)` hears about the intake as soon as the last 202 is in."""
    async with contextlib.AsyncExitStack() as stack:
        conn: Any = await asyncpg.connect(libpq_url(database_url))
        stack.push_async_callback(conn.close)
        # Clients are built before the clock starts: each one costs an SSL context, even for plain HTTP.
        clients = [await stack.enter_async_context(_client(url, key)) for _ in range(concurrency)]
        segmenter = await stack.enter_async_context(httpx.AsyncClient(base_url=segmenter_url))
        target = await applied_events(segmenter) + events
        target_orders = await applied_orders(conn) + events
        meter.start()
        started = time.perf_counter()
        posting = asyncio.create_task(post_all(clients, bodies))
        deadline = started + timeout_s
        while not posting.done():
            await asyncio.wait({posting}, timeout=0.1)
            if time.perf_counter() > deadline:
                posting.cancel()
                raise TimeoutError("posting did not finish")
        new, intake_done = posting.result()
        intake_used, intake_wall = meter.used()
        others = dict(meter.others)
        applied_then = await applied_events(segmenter) - (target - events)
        unpublished = int(await conn.fetchval(_UNPUBLISHED))
        cpu_intake = {k: v / intake_wall for k, v in intake_used.items()}
        if on_posted is not None:
            on_posted(events / (intake_done - started), cpu_intake)
        meter.start()
        e2e_done = await wait_applied(
            segmenter, conn, target, target_orders, timeout_s=max(deadline - time.perf_counter(), 1)
        )
        drain_used, drain_wall = meter.used()
        for name, sec in meter.others.items():
            others[name] = others.get(name, 0.0) + sec
        return ThroughputResult(
            posted=events,
            new=new,
            intake_s=intake_done - started,
            e2e_s=e2e_done - started,
            applied_when_intake_done=applied_then,
            unpublished_when_intake_done=unpublished,
            cpu_intake=cpu_intake,
            cpu_drain={k: v / drain_wall for k, v in drain_used.items()},
            cpu_seconds={k: intake_used[k] + drain_used[k] for k in intake_used},
            others=others,
        )
