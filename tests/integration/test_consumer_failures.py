"""How the consumer loop treats a batch that fails, against a real database: a deadlock is retried
whole, a poison message is isolated, and every event is counted once whichever way it went."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera.stack import Servers
from cartera_common.consumer import ConsumerLoop
from cartera_common.events import Envelope
from cartera_common.metrics import CONSUMED
from cartera_common.settings import ServiceSettings
from cartera_common.topics import EVENTS
from tests.integration.databases import migrated_engine
from tests.integration.envelopes import envelope


def record(offset: int, envelope: Envelope) -> ConsumerRecord[bytes, bytes]:
    value = envelope.to_bytes()
    return ConsumerRecord(
        topic=EVENTS, partition=0, offset=offset, timestamp=0, timestamp_type=0, key=envelope.key.encode(),
        value=value, checksum=None, serialized_key_size=0, serialized_value_size=len(value), headers=(),
    )  # fmt: skip


def envelopes(n: int) -> list[Envelope]:
    now = datetime.now(UTC)
    return [
        envelope("default", f"c-{i}", "order_completed", now, order_id=f"o-{i}", amount="1", currency="EUR")
        for i in range(n)
    ]


def counted(group: str, result: str) -> float:
    return float(CONSUMED.labels(group, EVENTS, result)._value.get())


class Recorder:
    """A handler that writes each event it applies, failing as told."""

    def __init__(self, fail: Any) -> None:
        self.calls: list[int] = []
        self.fail = fail

    async def __call__(self, conn: AsyncConnection, events: list[Envelope]) -> None:
        self.calls.append(len(events))
        await conn.execute(text("CREATE TABLE IF NOT EXISTS applied_here (event_id text PRIMARY KEY)"))
        await conn.execute(text("INSERT INTO applied_here SELECT unnest(CAST(:ids AS text[]))"),
                           {"ids": [e.event_id for e in events]})  # fmt: skip
        self.fail(events, len(self.calls))


async def run_batch(servers: Servers, handler: Recorder, batch: list[Envelope]) -> tuple[str, list[str]]:
    group = "failures-" + uuid.uuid4().hex[:8]
    async with migrated_engine(servers, "segmenter") as engine:
        settings = ServiceSettings(database_url="postgresql://unused", kafka_bootstrap_servers="unused:9092")
        loop = ConsumerLoop(
            group=group,
            topic=EVENTS,
            engine=engine,
            admin=None,
            settings=settings,
            handler=handler,  # type: ignore[arg-type]
        )
        await loop._apply_with_retry([record(i, e) for i, e in enumerate(batch)])
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT event_id FROM applied_here ORDER BY event_id"))).scalars().all()
    return group, list(rows)


async def test_a_deadlock_raised_straight_from_asyncpg_retries_the_whole_batch(servers: Servers) -> None:
    batch = envelopes(5)

    def deadlock_once(events: list[Envelope], call: int) -> None:
        if call == 1:
            raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")

    handler = Recorder(deadlock_once)
    group, applied = await run_batch(servers, handler, batch)
    assert handler.calls == [5, 5]  # retried as one batch, not taken apart message by message
    assert applied == sorted(e.event_id for e in batch)
    assert counted(group, "applied") == 5


async def test_a_batch_taken_apart_by_a_poison_message_counts_what_it_applied(servers: Servers) -> None:
    batch = envelopes(4)
    poison = batch[2].event_id

    def poisoned(events: list[Envelope], call: int) -> None:
        if any(e.event_id == poison for e in events):
            raise ValueError("cannot apply")

    handler = Recorder(poisoned)
    group, applied = await run_batch(servers, handler, batch)
    assert handler.calls == [4, 1, 1, 1, 1]
    assert applied == sorted(e.event_id for e in batch if e.event_id != poison)
    assert counted(group, "applied") == 3
    assert counted(group, "dead_lettered") == 1
