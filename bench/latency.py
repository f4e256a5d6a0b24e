"""Latency at a steady rate: from the 202 to the customer row committed, and the bare broker hop beside it."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from bench.workload import WORKSPACE, order_event
from cartera_common.kafka import make_admin, make_consumer, make_producer
from cartera_common.settings import KafkaSettings, libpq_url

_SEEN = (
    "SELECT customer_id, updated_at FROM segmenter.customer WHERE workspace_id = $1 AND customer_id = ANY($2::text[])"
)


@dataclass
class LatencyResult:
    """Seconds per event: `visible` is 202 → first poll that saw the row; `updated_at` uses the row's own clock."""

    sent: int = 0
    visible: list[float] = field(default_factory=list)
    updated_at: list[float] = field(default_factory=list)
    http: list[float] = field(default_factory=list)
    missing: int = 0
    late_starts: int = 0


async def paced(rate: float, seconds: float, batch: int, fire: Callable[[int], Coroutine[Any, Any, None]]) -> int:
    """Starts `fire(i)` on schedule whether or not earlier calls finished (no coordinated omission)."""
    interval = batch / rate
    count = max(1, int(seconds * rate / batch))
    tasks: list[asyncio.Task[None]] = []
    late = 0
    start = time.perf_counter()
    for i in range(count):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -interval:
            late += 1
        tasks.append(asyncio.create_task(fire(i)))
    await asyncio.gather(*tasks)
    return late


async def cartera_latency(
    url: str, key: str, database_url: str, *, run_id: str, rate: float, seconds: float, batch: int, poll_s: float
) -> LatencyResult:
    """Each event is a new customer; a poller looks the pending ones up by primary key every `poll_s`."""
    rng = random.Random(3)
    result = LatencyResult()
    accepted_at: dict[str, float] = {}
    pending: set[str] = set()
    done = asyncio.Event()
    client = httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        timeout=60,
    )

    async def fire(i: int) -> None:
        ids = [f"lat-{run_id}-{i * batch + j}" for j in range(batch)]
        body = orjson.dumps([order_event(rng, customer_id=c, order_id=f"l-{c}", n=i) for c in ids])
        sent = time.time()
        r = await client.post("/v1/events", content=body)
        accepted = time.time()
        if r.status_code != 202:
            raise RuntimeError(f"POST /v1/events answered {r.status_code}: {r.text[:500]}")
        result.http.append(accepted - sent)
        for c in ids:
            accepted_at[c] = accepted
        pending.update(ids)

    conn: Any = await asyncpg.connect(libpq_url(database_url))

    async def poll() -> None:
        deadline: float | None = None
        while pending or not done.is_set():
            if done.is_set():
                deadline = deadline or time.time() + 30
                if time.time() > deadline:
                    break
            if pending:
                asked = time.time()
                for row in await conn.fetch(_SEEN, WORKSPACE, list(pending)):
                    c = row["customer_id"]
                    pending.discard(c)
                    result.visible.append(asked - accepted_at[c])
                    result.updated_at.append(row["updated_at"].timestamp() - accepted_at[c])
            await asyncio.sleep(poll_s)

    poller = asyncio.create_task(poll())
    try:
        result.late_starts = await paced(rate, seconds, batch, fire)
        result.sent = len(accepted_at)
    finally:
        done.set()
        await poller
        result.missing = len(pending)
        await client.aclose()
        await conn.close()
    return result


async def pipe_latency(
    bootstrap: str, messages: Sequence[tuple[str, bytes]], *, topic: str, rate: float, seconds: float, batch: int
) -> list[float]:
    """send() → consumer receipt through the same broker, with the services' producer and consumer settings."""
    settings = KafkaSettings(kafka_bootstrap_servers=bootstrap)
    admin = make_admin(settings, client_id="bench-admin")
    await admin.start()
    await admin.create_topics([NewTopic(topic, settings.cartera_partitions, 1)])
    producer = make_producer(settings, client_id="bench-pipe-producer")
    consumer = make_consumer(settings, group_id=None, client_id="bench-pipe-consumer")
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def fire(i: int) -> None:
        for j in range(batch):
            seq = i * batch + j
            k, v = messages[seq % len(messages)]
            sent_at[seq] = time.time()
            await producer.send(topic, v, key=k.encode(), headers=[("seq", str(seq).encode())])

    async def consume() -> None:
        while not done.is_set() or len(latencies) < len(sent_at):
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            now = time.time()
            for records in batches.values():
                latencies.extend(now - sent_at[int(dict(r.headers)["seq"])] for r in records)

    try:
        await producer.start()
        await consumer.start()
        consumer.assign([TopicPartition(topic, p) for p in range(settings.cartera_partitions)])
        reader = asyncio.create_task(consume())
        await paced(rate, seconds, batch, fire)
        await producer.flush()
        done.set()
        await asyncio.wait_for(reader, timeout=30)
    finally:
        await producer.stop()
        await consumer.stop()
        await admin.delete_topics([topic])
        await admin.close()
    return latencies
