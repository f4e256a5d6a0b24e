"""The consumer loop against the real broker and database: replays, poison messages, the stream going on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from cartera.stack import Stack
from cartera_common.events import Envelope
from cartera_common.settings import libpq_url
from cartera_common.topics import EVENTS, dlq
from tests.integration.orders import wait_until


def order(customer: str, order_id: str, amount: str) -> Envelope:
    now = datetime.now(UTC)
    return Envelope(
        event_id=str(uuid.uuid4()),
        type="order_completed",
        workspace_id="default",
        customer_id=customer,
        occurred_at=now,
        received_at=now,
        payload={"order_id": order_id, "amount": amount, "currency": "EUR"},
    )


async def produce(stack: Stack, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(EVENTS, value, key=key)
    finally:
        await producer.stop()


async def fetch(stack: Stack, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(libpq_url(stack.database_url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def customer_row(stack: Stack, customer: str) -> asyncpg.Record | None:
    rows = await fetch(
        stack, "SELECT * FROM segmenter.customer WHERE workspace_id = 'default' AND customer_id = $1", customer
    )
    return rows[0] if rows else None


async def test_a_redelivered_event_changes_nothing(stack: Stack) -> None:
    customer = "replay-" + uuid.uuid4().hex[:8]
    first, second = order(customer, "o-1", "10"), order(customer, "o-2", "5")
    # The same event id three times, as a redelivery after a crash would bring it.
    await produce(stack, [(first.key.encode(), first.to_bytes())] * 3 + [(second.key.encode(), second.to_bytes())])

    async def applied() -> asyncpg.Record | None:
        row = await customer_row(stack, customer)
        return row if row is not None and row["order_count"] == 2 else None

    row = await wait_until(applied, timeout_s=30, what="both orders applied")
    assert str(row["revenue"]) == "15.0000"
    inbox = await fetch(stack, "SELECT count(*) AS n FROM segmenter.inbox WHERE event_id = $1", first.event_id)
    assert inbox[0]["n"] == 1


async def test_a_poison_message_goes_to_the_dead_letter_topic_and_the_stream_goes_on(stack: Stack) -> None:
    customer = "poison-" + uuid.uuid4().hex[:8]
    key = f"default:{customer}".encode()
    good = order(customer, "o-1", "7")
    unappliable = order(customer, "o-2", "not a number")  # decodes, but the handler cannot apply it
    broken_envelope = orjson.dumps({"event_id": "x", "type": "order_completed"})  # missing required fields
    await produce(
        stack, [(key, b"\xff not json"), (key, broken_envelope), (key, unappliable.to_bytes()), (key, good.to_bytes())]
    )

    async def applied() -> bool:
        row = await customer_row(stack, customer)
        return row is not None and row["order_count"] == 1

    await wait_until(applied, timeout_s=30, what="the good event after the poison ones")

    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(dlq(EVENTS)) or set()
        consumer.assign([TopicPartition(dlq(EVENTS), p) for p in partitions])
        await consumer.seek_to_beginning()
        found: list[dict[str, object]] = []

        async def dead_letters() -> bool:
            batch = await consumer.getmany(timeout_ms=500)
            letters = (orjson.loads(r.value) for rs in batch.values() for r in rs if r.key == key)
            # Other services on this stack (scoring) consume `events` too and dead-letter the same poison.
            found.extend(d for d in letters if d["group"] == "segmenter")
            return len(found) >= 3

        await wait_until(dead_letters, timeout_s=30, what="three dead letters")
    finally:
        await consumer.stop()
    reasons = sorted(str(d["reason"]) for d in found)
    assert sum(r.startswith("undecodable") for r in reasons) == 2
    assert any("InvalidOperation" in r for r in reasons)
    assert {d["topic"] for d in found} == {EVENTS}
    assert any(d["message"] == {"event_id": "x", "type": "order_completed"} for d in found)
