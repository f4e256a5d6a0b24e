"""Publishes a service's outbox to Kafka in id order, woken by NOTIFY, one active relay at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.producer.message_accumulator import BatchBuilder
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cartera_common.epoch import establish_epoch
from cartera_common.errors import is_transient
from cartera_common.failpoints import maybe_crash
from cartera_common.kafka import KeyPartitions
from cartera_common.metrics import OUTBOX_DEPTH, PUBLISHED, REPLAYED
from cartera_common.settings import ServiceSettings, libpq_url
from cartera_common.tracing import TRACEPARENT

log = logging.getLogger(__name__)

EpochHook = Callable[[AsyncConnection], Awaitable[None]]

# The relay keeps a position (txid, id) instead of marking rows: it publishes rows beyond it whose
# writing transaction is older than the oldest one still running (so none can still appear below),
# then moves the position. No row is written twice, and no row lock is taken: the advisory lock
# in publish_batch makes this relay the only one publishing, which key order needs (with
# SKIP LOCKED, two relays would split one customer's rows between them and could reorder them).
_CLAIM = text(
    """
    SELECT id, txid, topic, key, value, headers->>'traceparent' AS tp FROM outbox
    WHERE (txid, id) > (CAST(:txid AS xid8), :id) AND txid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY txid, id LIMIT :n
    """
)


def _headers(traceparent: str | None) -> list[tuple[str, bytes]] | None:
    return [(TRACEPARENT, traceparent.encode())] if traceparent else None


# A row past the position, if any, found by walking the index from it. Not an EXISTS: the planner
# drops ORDER BY and LIMIT inside one, guesses that a third of the table lies past the position,
# and scans the table from its start; with the whole published backlog before the position, that
# read every row of the outbox on each idle poll (50 to 90 ms at 200,000 rows, seen in the bench).
_WAITING = text("SELECT 1 FROM outbox WHERE (txid, id) > (CAST(:txid AS xid8), :id) ORDER BY txid, id LIMIT 1")
_POSITION = text("SELECT txid, last_id, epoch FROM relay_state WHERE relay = :r")
_ENSURE_STATE = text("INSERT INTO relay_state (relay) VALUES (:r) ON CONFLICT (relay) DO NOTHING")
_MOVE = text("UPDATE relay_state SET txid = CAST(:txid AS xid8), last_id = :id, updated_at = now() WHERE relay = :r")
_PRUNE_SLICE = 10_000
# The relay does the inbox's housekeeping too: one relay per service is leader, so one deletes.
_PRUNE_INBOX = text(
    f"""
    DELETE FROM inbox WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM inbox WHERE processed_at < now() - make_interval(secs => :r) LIMIT {_PRUNE_SLICE}))
    """  # noqa: S608 - a constant
)

_BACKLOG = text(
    """
    SELECT count(*) FROM outbox o, relay_state r
    WHERE r.relay = :r AND (o.txid, o.id) > (r.txid, r.last_id)
    """
)


class OutboxRelay:
    """At-least-once publisher; consumers' inboxes turn that into effectively once."""

    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        admin: AIOKafkaAdminClient,
        settings: ServiceSettings,
        retention_s: int | None = None,
        on_new_epoch: EpochHook | None = None,
    ) -> None:
        self.service = service
        self._engine = engine
        self._producer = producer
        self._admin = admin
        self._settings = settings
        self._retention_s = settings.cartera_outbox_retention_s if retention_s is None else retention_s
        self._inbox_retention_s = settings.cartera_inbox_retention_s
        self._on_new_epoch = on_new_epoch
        self._wake = asyncio.Event()
        self._stopping = False
        self._listener: asyncpg.Connection | None = None
        self._epoch_due = 0.0
        self._housekeeping_due = 0.0
        self.is_leader = False  # holds the publishing lock as of its last attempt
        self._waiting = False  # rows written but not yet publishable
        self._partitions = KeyPartitions(producer)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                await self._ensure_listener()
                await self._tick()
                if await self.publish_batch() == 0:
                    # Rows waiting on an older transaction elsewhere get no wake-up of their own.
                    await self._sleep(0.02 if self._waiting else 1.0)
                backoff = 0.1
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("relay failed", extra={"service": self.service})
                else:
                    log.warning("relay waiting for broker or database: %r", exc, extra={"service": self.service})
                self._epoch_due = 0.0  # the broker may have come back empty
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        await self.drain()
        await self._close_listener()

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Publishes what is left at shutdown, so a clean stop leaves no backlog behind."""
        deadline = time.monotonic() + timeout_s
        with contextlib.suppress(Exception):
            while time.monotonic() < deadline and await self.publish_batch() > 0:
                pass

    async def publish_batch(self) -> int:
        async with self._engine.begin() as conn:
            locked = await conn.scalar(
                text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": "relay:" + self.service}
            )
            self.is_leader = bool(locked)
            if not locked:
                return 0  # another replica is publishing; it keeps key order
            position = await self._state(conn)
            claim = {"txid": position.txid, "id": position.last_id, "n": self._settings.cartera_relay_batch}
            rows = (await conn.execute(_CLAIM, claim)).all()
            if not rows:
                self._waiting = bool(await conn.scalar(_WAITING, claim))
                return 0
            self._waiting = False
            await self._send(rows)
            maybe_crash("relay.after_send")  # published, position not moved: republished, deduped downstream
            await conn.execute(_MOVE, {"txid": rows[-1].txid, "id": rows[-1].id, "r": self.service})
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.topic] = counts.get(r.topic, 0) + 1
        for topic, n in counts.items():
            PUBLISHED.labels(self.service, topic).inc(n)
        return len(rows)

    async def _send(self, rows: Sequence[Row[Any]]) -> None:
        """Appends the rows to one record batch per partition, in order, and waits for all of them:
        a future and an accumulator pass per message cost the intake path more than the rest of
        publishing. Partitions come from the key exactly as the producer's own partitioner picks them."""
        open_batches: dict[tuple[str, int], BatchBuilder] = {}
        sent: list[asyncio.Future[Any]] = []
        for r in rows:
            key = r.key.encode()
            partition = await self._partitions.of(r.topic, key)
            batch = open_batches.get((r.topic, partition))
            if batch is None:
                batch = open_batches[(r.topic, partition)] = self._producer.create_batch()
            if batch.append(key=key, value=r.value, timestamp=None, headers=_headers(r.tp)) is None:
                sent.append(await self._producer.send_batch(batch, r.topic, partition=partition))
                batch = open_batches[(r.topic, partition)] = self._producer.create_batch()
                batch.append(key=key, value=r.value, timestamp=None, headers=_headers(r.tp))  # fits an empty batch
        for (topic, partition), batch in open_batches.items():
            sent.append(await self._producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sent)

    async def _tick(self) -> None:
        now = time.monotonic()
        if now >= self._epoch_due:
            await self.check_epoch()
            self._epoch_due = now + 5.0
        if now >= self._housekeeping_due:
            await self._housekeeping()
            self._housekeeping_due = now + 30.0

    async def check_epoch(self) -> None:
        """Republishes the recent outbox when the broker is not the one we last published to."""
        s = self._settings
        epoch = await establish_epoch(
            self._admin, partitions=s.cartera_partitions, replication=s.cartera_replication_factor
        )
        async with self._engine.begin() as conn:
            state = await self._state(conn)
            if state.epoch == epoch:
                return
            self._partitions.forget()
            if state.epoch is not None:
                replayed = await self._rewind(conn)
                REPLAYED.labels(self.service).inc(replayed)
                log.warning(
                    "broker is new (epoch %s); republishing %d rows", epoch, replayed, extra={"service": self.service}
                )
                if self._on_new_epoch is not None:
                    await self._on_new_epoch(conn)
            await conn.execute(
                text("UPDATE relay_state SET epoch = :e, updated_at = now() WHERE relay = :r"),
                {"r": self.service, "e": epoch},
            )

    async def _state(self, conn: AsyncConnection) -> Row[Any]:
        """This relay's position and last seen epoch, created on first use."""
        await conn.execute(_ENSURE_STATE, {"r": self.service})
        return (await conn.execute(_POSITION, {"r": self.service})).one()

    async def _rewind(self, conn: AsyncConnection) -> int:
        """Moves the position back to the first row written within the replay window."""
        first = (
            await conn.execute(
                text(
                    "SELECT txid, id FROM outbox WHERE created_at >= now() - make_interval(secs => :w) "
                    "ORDER BY txid, id LIMIT 1"
                ),
                {"w": self._settings.cartera_replay_window_s},
            )
        ).first()
        if first is None:
            return 0
        await conn.execute(_MOVE, {"txid": first.txid, "id": first.id - 1, "r": self.service})
        return int(await conn.scalar(_BACKLOG, {"r": self.service}) or 0)

    async def _housekeeping(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "DELETE FROM outbox o USING relay_state r WHERE r.relay = :relay "
                    "AND o.created_at < now() - make_interval(secs => :r) AND (o.txid, o.id) <= (r.txid, r.last_id)"
                ),
                {"r": self._retention_s, "relay": self.service},
            )
            depth = await conn.scalar(_BACKLOG, {"r": self.service})
        OUTBOX_DEPTH.labels(self.service).set(depth or 0)
        while True:  # in slices, so no transaction holds the inbox for long
            async with self._engine.begin() as conn:
                pruned = (await conn.execute(_PRUNE_INBOX, {"r": self._inbox_retention_s})).rowcount
            if pruned < _PRUNE_SLICE:
                return

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(libpq_url(self._settings.database_url))
            await self._listener.add_listener(f"outbox_{self.service}", lambda *_: self._wake.set())
        except (OSError, asyncpg.PostgresError) as exc:
            self._listener = None  # fall back to polling until the database is back
            log.warning("outbox listener unavailable: %r", exc, extra={"service": self.service})

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
