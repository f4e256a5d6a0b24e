"""The consumer loop every service runs: batch, inbox, handler, commit, then offsets.

A polled batch is applied in one transaction that claims each event id in the inbox (a
redelivered event is skipped) and stages what the handler publishes in the outbox. Offsets are
committed only after the database commit. A message that cannot be applied goes to
`<topic>.dlq` through the outbox, with the reason, and the stream goes on.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cartera_common.epoch import current_epoch
from cartera_common.errors import is_transient
from cartera_common.events.envelope import Envelope
from cartera_common.kafka import make_consumer
from cartera_common.logs import log_context
from cartera_common.metrics import CONSUMED, CONSUMER_LAG, DEAD_LETTERS, PROCESSING
from cartera_common.outbox import OutMessage, emit
from cartera_common.settings import ServiceSettings
from cartera_common.topics import dlq
from cartera_common.tracing import TRACEPARENT, batch_span

log = logging.getLogger(__name__)

Handler = Callable[[AsyncConnection, list[Envelope]], Awaitable[None]]
Batches = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]

_CLAIM = text(
    """
    INSERT INTO inbox (workspace_id, event_id, topic, outcome)
    SELECT ws, id, :topic, :outcome FROM unnest(CAST(:ws AS text[]), CAST(:ids AS text[])) AS t(ws, id)
    ON CONFLICT DO NOTHING
    RETURNING workspace_id, event_id
    """
)


@dataclass(frozen=True, slots=True)
class Decoded:
    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Undecodable:
    record: ConsumerRecord[bytes, bytes]
    reason: str


class ConsumerLoop:
    def __init__(
        self,
        *,
        group: str,
        topic: str,
        engine: AsyncEngine,
        admin: AIOKafkaAdminClient,
        settings: ServiceSettings,
        handler: Handler,
        lanes: int = 1,
    ) -> None:
        self.group = group
        self.lanes = lanes
        self.topic = topic
        self._engine = engine
        self._admin = admin
        self._settings = settings
        self._handler = handler
        self._stopping = False
        self._epoch: str | None = None
        self._epoch_due = 0.0
        self.consumer: AIOKafkaConsumer | None = None
        self.joined = False  # has had partitions assigned at least once

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self._consume()
            except Exception as exc:  # the loop must outlive a lost broker or database
                log.warning("consumer %s restarting after %r", self.group, exc, exc_info=not is_transient(exc))
                await asyncio.sleep(1.0)

    async def _consume(self) -> None:
        consumer = make_consumer(self._settings, group_id=self.group, client_id=self.group)
        self.consumer = consumer
        await consumer.start()
        try:
            consumer.subscribe([self.topic])
            lanes = [asyncio.Queue[Batches | None](maxsize=1) for _ in range(self.lanes)]
            async with asyncio.TaskGroup() as running:  # a lane that fails stops the rest, and the polling
                for queue in lanes:
                    running.create_task(self._lane(consumer, queue))
                await self._poll(consumer, lanes)
                for queue in lanes:
                    await queue.put(None)  # stopping: each lane finishes what it holds
        finally:
            self.consumer = None
            await consumer.stop()

    async def _poll(self, consumer: AIOKafkaConsumer, lanes: list[asyncio.Queue[Batches | None]]) -> None:
        """Hands each lane its partitions' share of every poll; a lane still busy with its last
        share holds the polling back (each queue takes one), so nothing runs ahead unbounded."""
        while not self._stopping:
            await self._watch_epoch(consumer)
            batches = await consumer.getmany(
                timeout_ms=200, max_records=self._settings.cartera_consumer_batch * self.lanes
            )
            self.joined = self.joined or bool(consumer.assignment())
            for queue, share in zip(lanes, split_lanes(batches, len(lanes)), strict=True):
                if share:
                    await queue.put(share)

    async def _lane(self, consumer: AIOKafkaConsumer, queue: asyncio.Queue[Batches | None]) -> None:
        """Applies its shares in order, each in one transaction, and commits their offsets after."""
        while (batches := await queue.get()) is not None:
            await self._apply_with_retry([r for records in batches.values() for r in records])
            await self._commit(consumer, batches)

    async def _watch_epoch(self, consumer: AIOKafkaConsumer) -> None:
        """Rewinds to the start when the broker came back empty, so nothing republished is skipped."""
        now = time.monotonic()
        if now < self._epoch_due:
            return
        self._epoch_due = now + 5.0
        epoch = await current_epoch(self._admin)
        if epoch is None:
            return
        if self._epoch is not None and epoch != self._epoch and consumer.assignment():
            log.warning("broker epoch changed; rewinding %s", self.group)
            await consumer.seek_to_beginning(*consumer.assignment())
        self._epoch = epoch

    async def _commit(self, consumer: AIOKafkaConsumer, batches: Batches) -> None:
        offsets = {tp: rs[-1].offset + 1 for tp, rs in batches.items() if rs}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("offset commit failed (%r); the batch will be redelivered and skipped by the inbox", exc)
        for tp, rs in batches.items():
            high = consumer.highwater(tp)
            if high is not None and rs:
                CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(max(high - rs[-1].offset - 1, 0))

    async def _apply_with_retry(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        decoded, bad = decode(records)
        backoff = 0.1
        while True:
            started = time.perf_counter()
            try:
                applied = await self._apply(decoded, bad)
                PROCESSING.labels(self.group).observe(time.perf_counter() - started)
                CONSUMED.labels(self.group, self.topic, "applied").inc(applied)
                CONSUMED.labels(self.group, self.topic, "duplicate").inc(len(decoded) - applied)
                return
            except Exception as exc:
                if is_transient(exc):
                    log.warning("transient failure applying batch, retrying: %r", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if len(decoded) <= 1:
                    await self._dead_letter(decoded, bad, reason=f"{type(exc).__name__}: {exc}")
                    return
                log.warning("a batch of %d failed (%r); applying it one message at a time", len(decoded), exc)
                await self._isolate(decoded, bad)
                return

    async def _isolate(self, decoded: list[Decoded], bad: list[Undecodable]) -> None:
        """Applies one message at a time to find the poison ones without losing the rest."""
        if bad:
            await self._dead_letter([], bad, reason="")
        for item in decoded:
            await self._apply_with_retry_one(item)

    async def _apply_with_retry_one(self, item: Decoded) -> None:
        backoff = 0.1
        while True:
            try:
                applied = await self._apply([item], [])
                CONSUMED.labels(self.group, self.topic, "applied" if applied else "duplicate").inc()
                return
            except Exception as exc:
                if is_transient(exc):
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                await self._dead_letter([item], [], reason=f"{type(exc).__name__}: {exc}")
                return

    async def _apply(self, decoded: list[Decoded], bad: list[Undecodable]) -> int:
        first = decoded[0] if decoded else None
        context = log_context(
            group=self.group,
            topic=self.topic,
            partition=first.record.partition if first else None,
            offset=first.record.offset if first else None,
            event_id=first.envelope.event_id if len(decoded) == 1 and first else None,
            workspace_id=first.envelope.workspace_id if len(decoded) == 1 and first else None,
        )
        with context, batch_span(f"apply {self.topic}", traces_of(decoded)):
            async with self._engine.begin() as conn:
                fresh = await claim(conn, self.topic, [d.envelope for d in decoded], outcome="applied")
                if bad:
                    await self._stage_dead_letters(conn, bad)
                if fresh:
                    await self._handler(conn, fresh)
        return len(fresh)

    async def _dead_letter(self, decoded: list[Decoded], bad: list[Undecodable], *, reason: str) -> None:
        items = bad + [Undecodable(d.record, reason) for d in decoded]
        async with self._engine.begin() as conn:
            if decoded:
                await claim(conn, self.topic, [d.envelope for d in decoded], outcome="dead")
            await self._stage_dead_letters(conn, items)

    async def _stage_dead_letters(self, conn: AsyncConnection, items: Sequence[Undecodable]) -> None:
        for item in items:
            log.warning(
                "dead-lettering %s[%d]@%d: %s",
                item.record.topic,
                item.record.partition,
                item.record.offset,
                item.reason[:2000],
                extra={"topic": item.record.topic, "partition": item.record.partition, "offset": item.record.offset},
            )
        await emit(conn, [dead_letter(self.topic, self.group, item) for item in items])
        DEAD_LETTERS.labels(self.topic).inc(len(items))
        CONSUMED.labels(self.group, self.topic, "dead_lettered").inc(len(items))


def split_lanes(batches: Batches, lanes: int) -> list[Batches]:
    """A polled batch as one share per lane, each partition always in the same lane (partition
    number modulo lanes), so a partition's records are applied in order. The lanes apply their
    shares side by side and independently, in their own transactions: a key lives in one
    partition, so they never touch the same customer, and while one waits for PostgreSQL another's
    Python runs. (With one lane, the segmenter's Python and its queries took turns and left a core
    idle while it caught up; with lanes that waited for each other at every poll, a third of it.)"""
    shares: list[Batches] = [{} for _ in range(max(lanes, 1))]
    for tp, records in batches.items():
        if records:
            shares[tp.partition % len(shares)][tp] = records
    return shares


def traces_of(decoded: Sequence[Decoded]) -> dict[tuple[str, str], str]:
    """Each customer's trace in the batch (the latest event's), from the `traceparent` header."""
    traces: dict[tuple[str, str], str] = {}
    for d in decoded:
        for key, value in d.record.headers or ():
            if key == TRACEPARENT and value:
                traces[(d.envelope.workspace_id, d.envelope.customer_id)] = value.decode("ascii", "replace")
    return traces


def decode(records: Sequence[ConsumerRecord[bytes, bytes]]) -> tuple[list[Decoded], list[Undecodable]]:
    good: list[Decoded] = []
    bad: list[Undecodable] = []
    for record in records:
        try:
            if record.value is None:
                raise ValueError("empty message")
            good.append(Decoded(record, Envelope.from_bytes(record.value)))
        except (ValidationError, ValueError) as exc:
            bad.append(Undecodable(record, f"undecodable: {exc}"))
    return good, bad


async def claim(conn: AsyncConnection, topic: str, envelopes: list[Envelope], *, outcome: str) -> list[Envelope]:
    """Records the ids in the inbox; returns the envelopes seen for the first time, once each."""
    if not envelopes:
        return []
    result = await conn.execute(
        _CLAIM,
        {
            "topic": topic,
            "outcome": outcome,
            "ws": [e.workspace_id for e in envelopes],
            "ids": [e.event_id for e in envelopes],
        },
    )
    fresh = {(ws, eid) for ws, eid in result}
    out: list[Envelope] = []
    for e in envelopes:
        if (e.workspace_id, e.event_id) in fresh:
            fresh.discard((e.workspace_id, e.event_id))
            out.append(e)
    return out


def dead_letter(topic: str, group: str, item: Undecodable) -> OutMessage:
    r = item.record
    raw = r.value or b""
    try:
        original: object = orjson.loads(raw)
    except orjson.JSONDecodeError:
        original = base64.b64encode(raw).decode()
    key = (r.key or b"").decode(errors="replace")
    body = {
        "topic": topic,
        "partition": r.partition,
        "offset": r.offset,
        "group": group,
        "key": key,
        "reason": item.reason,
        "failed_at": datetime.now(UTC).isoformat(),
        "message": original,
    }
    workspace = key.split(":", 1)[0] if ":" in key else "_unknown"
    return OutMessage(dlq(topic), key, orjson.dumps(body), workspace, f"{group}:{topic}:{r.partition}:{r.offset}")
