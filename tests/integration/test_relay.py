"""The outbox relay against a real PostgreSQL and broker: no row skipped, none reordered per key."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from cartera.stack import Stack
from cartera_common import relay as relay_module
from cartera_common.db import create_engine
from cartera_common.kafka import make_admin, make_producer
from cartera_common.migrations import create_plumbing_tables
from cartera_common.relay import OutboxRelay
from cartera_common.settings import ServiceSettings, libpq_url

INSERT = "INSERT INTO {schema}.outbox (workspace_id, message_id, topic, key, value) VALUES ('w', $1, $2, 'w:c', $3)"


@pytest.fixture
async def relay(stack: Stack) -> AsyncIterator[tuple[OutboxRelay, str, str]]:
    """A relay over a scratch schema of its own, publishing to a scratch topic."""
    schema = "relay_" + uuid.uuid4().hex[:8]
    settings = ServiceSettings(database_url=stack.database_url, kafka_bootstrap_servers=stack.bootstrap)
    engine = create_engine(settings, schema=schema)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        await conn.run_sync(lambda sync: create_plumbing_tables(sync, schema))
    producer, admin = make_producer(settings, client_id=schema), make_admin(settings, client_id=schema)
    await producer.start()
    await admin.start()
    yield (
        OutboxRelay(service=schema, engine=engine, producer=producer, admin=admin, settings=settings),
        schema,
        "t-" + schema,
    )
    await producer.stop()
    await admin.close()
    await engine.dispose()


async def published(stack: Stack, topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or {0})]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[bytes] = []
        for _ in range(50):
            batch = await consumer.getmany(timeout_ms=200)
            out += [r.value for rs in batch.values() for r in rs if r.value is not None]
            if len(out) >= expected:
                break
        return out
    finally:
        await consumer.stop()


async def test_a_row_committed_after_a_newer_one_is_still_published_in_transaction_order(
    stack: Stack, relay: tuple[OutboxRelay, str, str]
) -> None:
    publisher, schema, topic = relay
    slow = await asyncpg.connect(libpq_url(stack.database_url))
    fast = await asyncpg.connect(libpq_url(stack.database_url))
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute(INSERT.format(schema=schema), "a", topic, b"first")  # older transaction, still open
        await fast.execute(INSERT.format(schema=schema), "b", topic, b"second")  # newer, committed at once
        assert await publisher.publish_batch() == 0  # "second" must wait for the older transaction
        await tx.commit()
        assert await publisher.publish_batch() == 2
        assert await publisher.publish_batch() == 0  # the position moved: nothing is published twice
    finally:
        await slow.close()
        await fast.close()
    assert await published(stack, topic, 2) == [b"first", b"second"]


async def test_a_rolled_back_row_is_never_published_and_does_not_block_the_rest(
    stack: Stack, relay: tuple[OutboxRelay, str, str]
) -> None:
    publisher, schema, topic = relay
    conn = await asyncpg.connect(libpq_url(stack.database_url))
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(INSERT.format(schema=schema), "gone", topic, b"rolled back")
        await tx.rollback()
        await conn.execute(INSERT.format(schema=schema), "kept", topic, b"kept")
    finally:
        await conn.close()
    assert await publisher.publish_batch() == 1
    assert await published(stack, topic, 1) == [b"kept"]


async def test_a_large_backlog_goes_out_in_batches_each_key_on_its_partition_in_order(
    stack: Stack, relay: tuple[OutboxRelay, str, str]
) -> None:
    """More than one record batch per partition (8 KB values against 256 KB batches), several keys:
    every message on the partition the producer's partitioner gives its key, in the order written."""
    publisher, schema, topic = relay
    rows = [(f"m{n:04d}", f"w:c{n % 7}", f"{n:04d}".encode() + b"." * 8_000) for n in range(300)]
    conn = await asyncpg.connect(libpq_url(stack.database_url))
    try:
        await conn.executemany(
            f"INSERT INTO {schema}.outbox (workspace_id, message_id, topic, key, value) VALUES ('w', $1, '{topic}', $2, $3)",
            rows,
        )
    finally:
        await conn.close()
    assert await publisher.publish_batch() == 300
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or {0})
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen: dict[bytes, list[tuple[int, int]]] = {}
        for _ in range(100):
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for r in records:
                    assert r.key is not None and r.value is not None
                    seen.setdefault(r.key, []).append((tp.partition, int(r.value[:4])))
            if sum(map(len, seen.values())) >= 300:
                break
    finally:
        await consumer.stop()
    assert sum(map(len, seen.values())) == 300
    for key, got in seen.items():
        assert {p for p, _ in got} == {DefaultPartitioner()(key, partitions, partitions)}
        numbers = [n for _, n in got]
        assert numbers == sorted(numbers) and len(numbers) == len(set(numbers))


async def test_housekeeping_forgets_event_ids_older_than_the_inbox_retention(
    relay: tuple[OutboxRelay, str, str], stack: Stack
) -> None:
    r, schema, _ = relay
    conn = await asyncpg.connect(libpq_url(stack.database_url))
    try:
        await conn.execute(
            f"INSERT INTO {schema}.inbox (workspace_id, event_id, topic, processed_at) "
            "SELECT 'w', 'old-' || g, 'events', now() - interval '36 days' FROM generate_series(1, 25000) g"
        )
        await conn.execute(
            f"INSERT INTO {schema}.inbox (workspace_id, event_id, topic, processed_at) "
            "SELECT 'w', 'kept-' || g, 'events', now() - interval '34 days' FROM generate_series(1, 10) g"
        )
        await r._housekeeping()  # more than one slice of old rows
        left = await conn.fetch(f"SELECT event_id FROM {schema}.inbox")
    finally:
        await conn.close()
    assert sorted(row["event_id"] for row in left) == sorted(f"kept-{g}" for g in range(1, 11))


async def test_the_idle_check_for_waiting_rows_reads_the_index_not_the_published_backlog(
    relay: tuple[OutboxRelay, str, str], stack: Stack
) -> None:
    """With everything published, "is a row waiting?" must cost a few index pages whatever the size
    of the outbox: the relay asks it on every idle poll. Checked on the generic plan PostgreSQL
    settles on for a prepared statement, before the table has statistics (a fast-growing outbox
    outruns autovacuum): as an EXISTS, that plan was a scan of the whole table."""
    publisher, schema, topic = relay
    conn = await asyncpg.connect(libpq_url(stack.database_url))
    try:
        await conn.execute(
            f"INSERT INTO {schema}.outbox (workspace_id, message_id, topic, key, value) "
            f"SELECT 'w', 'm' || g, '{topic}', 'w:c', '\\x00' FROM generate_series(1, 30000) g"
        )
        while await publisher.publish_batch():
            pass
        position = await conn.fetchrow(f"SELECT txid, last_id FROM {schema}.relay_state")
        await conn.execute(f"SET search_path = {schema}; SET plan_cache_mode = force_generic_plan")
        sql = str(relay_module._WAITING.compile(compile_kwargs={})).replace(":txid", "$1").replace(":id", "$2")
        [[plan]] = await conn.fetch(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", position["txid"], position["last_id"]
        )
    finally:
        await conn.close()
    top = orjson.loads(plan)[0]["Plan"]
    assert top["Shared Hit Blocks"] + top.get("Shared Read Blocks", 0) < 20, top
