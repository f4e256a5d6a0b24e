"""`cartera dlq list|retry`: dead letters with their reasons, and sending them back to their topic.

A consumer that cannot apply a message publishes it to `<topic>.dlq` with the reason, the group
that failed and where the message came from; its id here is `group:topic:partition:offset`.
`retry` republishes the original message to its original topic. The failing group noted the event
as dead in its inbox, so retry first clears that note (only that one, and only while it still
says dead): the failing group applies the message again, and every other group skips it as
already applied. A dead letter stays on its topic after a retry (topics are append-only); a
message that fails again is dead-lettered again, under a new id.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy import text

from cartera.commands import clients
from cartera.commands.base import (
    EXIT_OK,
    CommandError,
    Subparsers,
    UsageError,
    add_command,
    note,
    print_json,
    shorten,
    table,
)
from cartera.commands.connection import Connection, resolve
from cartera.services import SERVICES
from cartera_common.topics import dlq

READ_TIMEOUT_S = 30.0
_CLEAR_DEAD = "DELETE FROM {schema}.inbox WHERE workspace_id = :w AND event_id = :e AND topic = :t AND outcome = 'dead'"


@dataclass(frozen=True)
class DeadLetter:
    id: str
    topic: str  # where the message came from, and where a retry sends it
    group: str
    key: str
    reason: str
    failed_at: str
    message: Any  # the original JSON, or base64 of bytes that were not JSON
    dlq_topic: str
    dlq_partition: int
    dlq_offset: int

    @classmethod
    def from_record(cls, record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
        where = {"dlq_topic": record.topic, "dlq_partition": record.partition, "dlq_offset": record.offset}
        try:
            body = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not {"topic", "group", "partition", "offset"} <= body.keys():
            own_id, topic = f"{record.topic}:{record.partition}:{record.offset}", record.topic.removesuffix(".dlq")
            return cls(own_id, topic, "", "", "not a Cartera dead letter", "", None, **where)
        return cls(
            id=f"{body['group']}:{body['topic']}:{body['partition']}:{body['offset']}",
            topic=str(body["topic"]),
            group=str(body["group"]),
            key=str(body.get("key") or ""),
            reason=str(body.get("reason", "")),
            failed_at=str(body.get("failed_at", "")),
            message=body.get("message"),
            **where,
        )

    def original(self) -> bytes:
        """The bytes to republish: the JSON as it was, or the raw bytes the consumer kept in base64."""
        if isinstance(self.message, str):
            try:
                raw = base64.b64decode(self.message, validate=True)
            except binascii.Error:
                return orjson.dumps(self.message)
            try:
                orjson.loads(raw)
            except orjson.JSONDecodeError:
                return raw  # not JSON: exactly what the consumer base64-encoded
            return orjson.dumps(self.message)  # JSON would have been kept as JSON: it was a JSON string
        return orjson.dumps(self.message)

    def event(self) -> tuple[str, str] | None:
        """(workspace, event id) when the message is an envelope, which the failing group's inbox noted."""
        m = self.message
        if isinstance(m, dict) and isinstance(m.get("workspace_id"), str) and isinstance(m.get("event_id"), str):
            return m["workspace_id"], m["event_id"]
        return None

    @property
    def schema(self) -> str | None:
        """The failing group's service schema: groups are named after their service (`segmenter.scores`)."""
        name = self.group.split(".", 1)[0]
        return name if name in {s.name for s in SERVICES} else None


def register(sub: Subparsers) -> None:
    group = add_command(sub, "dlq", "list dead letters and retry them", __doc__)
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = add_command(actions, "list", "dead letters with their reasons, newest last")
    ls.add_argument("--topic", help="only this topic's dead letters (events or events.dlq)")
    ls.add_argument("--limit", type=int, default=50, help="at most this many, the newest (default 50; 0: all)")
    ls.add_argument("--json", action="store_true", help="print them as JSON, with the original messages")
    ls.set_defaults(run=run_list)
    retry = add_command(actions, "retry", "republish dead letters to their original topic")
    retry.add_argument("--topic", help="retry this topic's dead letters (events or events.dlq)")
    retry.add_argument("--id", action="append", dest="ids", metavar="ID", help="retry this one (repeatable)")
    retry.add_argument("--all", action="store_true", help="retry every dead letter of every topic")
    retry.set_defaults(run=run_retry)


def run_list(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise UsageError("--limit must be 0 (all) or more")
    letters = asyncio.run(read(resolve(), args.topic, args.limit or None))
    if args.json:
        print_json([asdict(d) for d in letters])
    elif not letters:
        print("no dead letters")
    else:
        rows = [[d.id, d.failed_at[:19], d.key, shorten(d.reason, 70)] for d in letters]
        print(table(["ID", "FAILED AT", "KEY", "REASON"], rows, indent=""))
    return EXIT_OK


def run_retry(args: argparse.Namespace) -> int:
    if not (args.ids or args.topic or args.all):
        raise UsageError("say which dead letters to retry: --id ID, --topic TOPIC or --all")
    conn = resolve()
    letters = asyncio.run(read(conn, args.topic, None))
    if args.ids:
        missing = sorted(set(args.ids) - {d.id for d in letters})
        if missing:
            raise CommandError(f"no dead letter with id {', '.join(missing)} (`cartera dlq list` shows them)")
        letters = [d for d in letters if d.id in set(args.ids)]
    if foreign := [d.id for d in letters if not d.group]:
        note(f"skipping {', '.join(foreign)}: not Cartera dead letters, so their original is unknown")
        letters = [d for d in letters if d.group]
    if not letters:
        print("no dead letters to retry")
        return EXIT_OK
    cleared, sent = asyncio.run(retry(conn, letters))
    print(f"republished {sent} message{'s' if sent != 1 else ''} to {', '.join(sorted({d.topic for d in letters}))}")
    if cleared:
        note(f"cleared {cleared} dead mark{'s' if cleared != 1 else ''} from the failing groups' inboxes")
    return EXIT_OK


def dlq_topics(existing: set[str], topic: str | None) -> list[str]:
    if topic is None:
        return sorted(t for t in existing if t.endswith(".dlq"))
    name = topic if topic.endswith(".dlq") else dlq(topic)
    if name not in existing:
        raise CommandError(f"there is no topic {name}")
    return [name]


async def read(conn: Connection, topic: str | None, limit: int | None) -> list[DeadLetter]:
    """The last `limit` dead letters of each partition (all when None), oldest failure first."""
    async with clients.kafka_consumer(conn) as consumer:
        topics = dlq_topics(set(await consumer.topics()), topic)
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        letters = [DeadLetter.from_record(r) for r in await read_partitions(consumer, tps, limit)]
    letters.sort(key=lambda d: (d.failed_at, d.dlq_topic, d.dlq_partition, d.dlq_offset))
    return letters[-limit:] if limit else letters


async def read_partitions(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], limit: int | None
) -> list[ConsumerRecord[bytes, bytes]]:
    if not tps:
        return []
    begins, ends = await clients.offset_range(consumer, tps)
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, max(begins[tp], ends[tp] - limit) if limit else begins[tp])
    pending = {tp for tp in tps if ends[tp] > begins[tp]}
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=500)
        records += [r for tp, rs in batch.items() for r in rs if r.offset < ends[tp]]
        pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        if pending and time.monotonic() > deadline:
            raise CommandError(f"could not read the dead letters within {READ_TIMEOUT_S:g}s")
    return records


async def retry(conn: Connection, letters: list[DeadLetter]) -> tuple[int, int]:
    """Clears the failing groups' dead marks, then republishes each distinct message once."""
    cleared = 0
    for schema in sorted({d.schema for d in letters if d.schema and d.event()}):
        async with clients.database(conn, schema) as engine, engine.begin() as db:
            for d in letters:
                if d.schema == schema and (event := d.event()) is not None:
                    params = {"w": event[0], "e": event[1], "t": d.topic}
                    cleared += (await db.execute(text(_CLEAR_DEAD.format(schema=schema)), params)).rowcount
    unique = dict.fromkeys((d.topic, d.key, d.original()) for d in letters)
    async with clients.kafka_producer(conn) as producer:
        for topic, key, value in unique:
            await producer.send_and_wait(topic, value, key=key.encode() or None)
    return cleared, len(unique)
