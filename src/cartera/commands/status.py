"""`cartera status`: services, topics, consumer lag, dead letters and outbox backlog at a glance.

Unhealthy (exit 1): a service not live or not ready, the database or broker unreachable, a topic
or schema missing. Lag, dead letters and backlog are reported, not judged: dead letters stay on
their topic after a retry, so counting them as a failure would fail every check forever.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text

from cartera.commands import clients
from cartera.commands.base import EXIT_FAILURE, EXIT_OK, CommandError, Subparsers, add_command, print_json, table
from cartera.commands.connection import Connection, redact, resolve
from cartera.services import SERVICES
from cartera_common.epoch import MARKER_PREFIX, current_epoch
from cartera_common.topics import ALL_TOPICS

_BACKLOG = """
    SELECT count(*) AS unpublished, min(o.created_at) AS oldest_at
    FROM {schema}.outbox o LEFT JOIN {schema}.relay_state r ON r.relay = :relay
    WHERE r.relay IS NULL OR (o.txid, o.id) > (r.txid, r.last_id)
"""


@dataclass
class Report:
    database: str
    broker: str
    origin: str
    epoch: str | None = None
    problems: list[str] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    topics: list[dict[str, Any]] = field(default_factory=list)
    lag: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"healthy": self.healthy} | asdict(self)


def register(sub: Subparsers) -> None:
    p = add_command(sub, "status", "services, topics, consumer lag, dead letters and outbox backlog", __doc__)
    p.add_argument("--json", action="store_true", help="print the report as JSON (for scripts)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(collect(resolve()))
    if args.json:
        print_json(report.as_json())
    else:
        print(render(report))
    return EXIT_OK if report.healthy else EXIT_FAILURE


async def collect(conn: Connection) -> Report:
    report = Report(database=redact(conn.database_url), broker=conn.bootstrap, origin=conn.origin)
    await asyncio.gather(_services(conn, report), _broker(conn, report), _outboxes(conn, report))
    return report


async def _services(conn: Connection, report: Report) -> None:
    async with clients.async_http_client(timeout=5.0) as client:
        rows = await asyncio.gather(*(_service(client, s.name, conn.url(s.name)) for s in SERVICES))
    for row in rows:
        report.services.append(row)
        if row.get("error"):
            report.problems.append(f"{row['service']}: {row['error']} at {row['url']}")
        elif not (row["live"] and row["ready"]):
            failing = ", ".join(f"{k}: {v}" for k, v in row["checks"].items() if v not in ("ok", "joined", "joining"))
            report.problems.append(f"{row['service']}: not {'ready' if row['live'] else 'live'} ({failing or '-'})")


async def _service(client: httpx.AsyncClient, name: str, url: str) -> dict[str, Any]:
    row: dict[str, Any] = {"service": name, "url": url, "live": False, "ready": False, "checks": {}}
    try:
        row["live"] = (await client.get(url + "/healthz")).status_code == 200
        ready = await client.get(url + "/readyz")
        row["ready"] = ready.status_code == 200
        body = ready.json()
        if isinstance(body, dict):
            row["checks"] = {k: str(v) for k, v in body.items() if k != "status"}
    except httpx.HTTPError as exc:
        row["error"] = f"unreachable ({type(exc).__name__})"
    except ValueError:
        row["checks"] = {"readyz": "not JSON"}
    return row


async def _broker(conn: Connection, report: Report) -> None:
    try:
        async with clients.kafka_admin(conn) as admin, clients.kafka_consumer(conn) as consumer:
            await _read_broker(admin, consumer, report)
    except CommandError as exc:
        report.problems.append(str(exc))


async def _read_broker(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, report: Report) -> None:
    names = sorted(t for t in await admin.list_topics() if not t.startswith(("__", MARKER_PREFIX)))
    report.epoch = await current_epoch(admin)
    report.problems += [
        f"topic {t} is missing (services create topics when they start)" for t in ALL_TOPICS if t not in names
    ]
    partitions = await topic_partitions(admin, names)
    tps = [TopicPartition(t, p) for t, ps in partitions.items() for p in ps]
    begins, ends = await clients.offset_range(consumer, tps)
    for topic, ps in partitions.items():
        held = sum(ends[TopicPartition(topic, p)] - begins[TopicPartition(topic, p)] for p in ps)
        report.topics.append({"topic": topic, "partitions": len(ps), "messages": held})
        if topic.endswith(".dlq"):
            report.dead_letters.append({"topic": topic, "messages": held})
    if tps:
        for group, *_ in sorted(await admin.list_consumer_groups()):
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
            report.lag += group_lag(group, {tp: m.offset for tp, m in committed.items()}, begins, ends)


async def topic_partitions(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, list[int]]:
    """Partitions of existing topics only: describing a missing topic may auto-create it."""
    if not names:
        return {}
    described = await admin.describe_topics(names)
    return {
        d["topic"]: sorted(p["partition"] for p in d["partitions"]) for d in described if d.get("error_code", 0) == 0
    }


def group_lag(
    group: str,
    committed: dict[TopicPartition, int],
    begins: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
) -> list[dict[str, Any]]:
    """Messages not yet consumed, per topic the group has committed on (-1: nothing committed there yet)."""
    topics = sorted({tp.topic for tp, offset in committed.items() if offset >= 0})
    rows = []
    for topic in topics:
        tps = [tp for tp in ends if tp.topic == topic]
        lag = sum(ends[tp] - (committed.get(tp, -1) if committed.get(tp, -1) >= 0 else begins[tp]) for tp in tps)
        rows.append({"group": group, "topic": topic, "lag": max(lag, 0)})
    return rows


async def _outboxes(conn: Connection, report: Report) -> None:
    try:
        async with clients.database(conn, "public") as engine, engine.connect() as db:
            for spec in SERVICES:
                found = await db.scalar(text("SELECT to_regclass(:t)::text"), {"t": f"{spec.name}.outbox"})
                if found is None:
                    report.problems.append(f"the {spec.name} schema is not migrated (run `cartera migrate`)")
                    continue
                query = text(_BACKLOG.format(schema=spec.name))
                row = (await db.execute(query, {"relay": spec.name})).one()
                report.outbox.append({"schema": spec.name, "unpublished": row.unpublished, "oldest_at": row.oldest_at})
    except CommandError as exc:
        report.problems.append(str(exc))


def render(report: Report) -> str:
    yes = {True: "yes", False: "no"}
    out = [
        f"Cartera ({report.origin})",
        f"  database  {report.database}",
        f"  broker    {report.broker}" + (f"  (epoch {report.epoch[:12]})" if report.epoch else ""),
        "",
        "Services",
        table(
            ["SERVICE", "URL", "LIVE", "READY", "DATABASE", "BROKER", "CONSUMERS"],
            [
                [s["service"], s["url"], yes[s["live"]], yes[s["ready"]]]
                + [s["checks"].get(k, "-") for k in ("database", "broker", "consumers")]
                for s in report.services
            ],
        ),
    ]
    sections = [
        ("Topics", ["TOPIC", "PARTITIONS", "MESSAGES"], [list(t.values()) for t in report.topics]),
        ("Consumer lag", ["GROUP", "TOPIC", "LAG"], [list(r.values()) for r in report.lag]),
        ("Dead letters", ["TOPIC", "MESSAGES"], [list(d.values()) for d in report.dead_letters]),
        (
            "Outbox backlog",
            ["SCHEMA", "UNPUBLISHED", "OLDEST"],
            [[o["schema"], o["unpublished"], o["oldest_at"] or "-"] for o in report.outbox],
        ),
    ]
    for title, headers, rows in sections:
        out += ["", title, table(headers, rows) if rows else "  (none)"]
    out.append("")
    if report.healthy:
        out.append("healthy")
    else:
        out.append(f"unhealthy: {len(report.problems)} problem{'s' if len(report.problems) > 1 else ''}")
        out += [f"  - {p}" for p in report.problems]
    return "\n".join(out)
