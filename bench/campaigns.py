"""The win-back engine at scale, in-process on a real PostgreSQL and a real SMTP sink process.

1. Enrol: 100,000 `customer_changed` (lapsed) messages through the consumer path (inbox claim,
   snapshot, audience, machine, enrolment rows, outbox), in the consumer's batches. Baseline: the
   same number of enrolment rows written by one bare INSERT, the floor of any enrolment.
2. First step: the scheduler renders and queues each customer's first message.
3. Deliver: the dispatcher sends them to `campaigns.sink` (the `make run` sink, its own process)
   and settles them. Baseline: the same messages, pre-built, sent by bare aiosmtplib over the same
   number of connections to the same sink. Duplicates are counted from the files the sink keeps.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.report import Figure
from campaigns import catalogue
from campaigns.delivery.channels import senders_from
from campaigns.delivery.config import DeliverySettings
from campaigns.delivery.templates import Templates
from campaigns.dispatcher import Dispatcher
from campaigns.domain.pacing import PacingRules
from campaigns.handlers import Handlers
from campaigns.messages import Composer, Links
from campaigns.scheduler import step_all
from campaigns.sink import list_mail
from cartera_common.clock import SettableClock
from cartera_common.consumer import claim
from cartera_common.events import Envelope
from cartera_common.events.changes import CustomerChanged, CustomerSnapshot
from cartera_common.settings import asyncpg_url
from cartera_common.topics import CUSTOMER_CHANGES

WORKSPACE = "bench"
BATCH = 2_000  # the consumer's default batch (CARTERA_CONSUMER_BATCH)
CONNECTIONS = 4  # CAMPAIGNS_SMTP_CONNECTIONS' default


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lapses(n: int, now: datetime) -> list[Envelope]:
    out = []
    for i in range(n):
        snapshot = CustomerSnapshot(
            status="lapsed",
            name=f"Customer {i}",
            email=f"c{i}@example.com",
            tier=("very_high", "high", "medium", "low")[i % 4] if i % 5 else None,
            order_count=1 + i % 20,
            revenue=float(10 + i % 500),
            customer_since=datetime(2022 + i % 4, 1 + i % 12, 1, tzinfo=UTC),
            favourite_category=("flowers", "plants", "gifts")[i % 3],
            unhappy=i % 7 == 0,
            leave_reasons=["late_delivery"] if i % 7 == 0 else [],
            consent={"phone": False},  # email only: the call-task step would need a CRM
        )
        payload = CustomerChanged(changes=["status"], customer=snapshot).model_dump(mode="json")
        out.append(
            Envelope(
                event_id=str(uuid.uuid4()),
                type="customer_changed",
                workspace_id=WORKSPACE,
                customer_id=f"c{i}",
                occurred_at=now,
                received_at=now,
                payload=payload,
            )
        )
    return out


async def run_campaigns(database_url: str, *, customers: int) -> list[Figure]:
    print(f"campaigns: enrol {customers:,} lapsed customers, send their first message", flush=True)
    engine = create_async_engine(
        asyncpg_url(database_url),
        connect_args={"server_settings": {"search_path": "campaigns"}},
        json_deserializer=orjson.loads,
    )
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    clock = SettableClock(now)
    links = Links("http://127.0.0.1:8004", "bench-secret")
    composer = Composer(Templates(), links)
    handlers = Handlers(clock, composer)
    mail_dir = Path(tempfile.mkdtemp(prefix="cartera-bench-mail-"))
    port = _free_port()
    sink = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "campaigns.sink", "--dir", str(mail_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with engine.begin() as conn:  # a backlog is the point here: no daily limit, no quiet hours
            rules = PacingRules(daily_limit=10 * customers, quiet_start="00:00", quiet_end="00:00")
            await catalogue.save_pacing(conn, WORKSPACE, rules, now)
        events = _lapses(customers, now)

        started = time.perf_counter()
        for i in range(0, len(events), BATCH):
            async with engine.begin() as conn:
                fresh = await claim(conn, CUSTOMER_CHANGES, events[i : i + BATCH], outcome="applied")
                await handlers.apply_changes(conn, fresh)
        enrol_s = time.perf_counter() - started
        async with engine.connect() as conn:
            enrolled = (await conn.execute(text("SELECT count(*) FROM enrolment"))).scalar_one()
            control = (await conn.execute(text("SELECT count(*) FROM enrolment WHERE control"))).scalar_one()
        print(f"  enrolled {enrolled:,} ({control:,} in control groups) in {enrol_s:.1f} s", flush=True)
        floor_s = await _insert_floor(engine, enrolled)

        started = time.perf_counter()
        stepped = await step_all(engine, composer, clock, chunk=BATCH)
        step_s = time.perf_counter() - started
        async with engine.connect() as conn:
            queued = (await conn.execute(text("SELECT count(*) FROM message WHERE state = 'queued'"))).scalar_one()
        print(f"  stepped {stepped:,} enrolments, {queued:,} messages queued, in {step_s:.1f} s", flush=True)
        render_s = _render_floor(events[:queued], composer, now)

        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        settings = DeliverySettings(
            campaigns_smtp_host="127.0.0.1", campaigns_smtp_port=port, campaigns_smtp_connections=CONNECTIONS
        )
        async with httpx.AsyncClient() as client:
            dispatcher = Dispatcher(engine, senders_from(settings, client), links, batch=500)
            started = time.perf_counter()
            await dispatcher.drain()
            send_s = time.perf_counter() - started
            for sender in dispatcher.senders.values():
                await sender.close()
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT state, count(*) FROM message GROUP BY state"))).all()
            states: dict[str, int] = {r[0]: r[1] for r in rows}
        caught = Counter(m.message_id for m in list_mail(mail_dir, limit=10 * customers))
        duplicates = sum(n - 1 for n in caught.values() if n > 1)
        sent = states.get("sent", 0)
        print(
            f"  delivered {sent:,} to the sink in {send_s:.1f} s; states {states}; duplicates {duplicates}", flush=True
        )

        floor_rate = await _bare_smtp_rate(port, min(sent, 20_000), mail_dir)
    finally:
        sink.terminate()
        sink.wait(10)
        await engine.dispose()
        shutil.rmtree(mail_dir, ignore_errors=True)  # a hundred thousand emails nobody will read

    rate = sent / send_s if send_s else 0.0
    return [
        Figure(
            f"enrol {customers:,} newly lapsed customers",
            enrol_s * 1000,
            "ms",
            floor_s * 1000,
            "bare INSERT of the enrolment rows",
            "< 30 s",
        ),  # fmt: skip
        Figure(
            f"first step: render and queue {queued:,} messages",
            step_s * 1000,
            "ms",
            render_s * 1000,
            "rendering alone, no database",
        ),  # fmt: skip
        Figure(
            "messages delivered to the SMTP sink",
            rate,
            "msg/s",
            floor_rate,
            f"bare aiosmtplib, {CONNECTIONS} connections",
            "> 2,000 msg/s",
        ),  # fmt: skip
        Figure("duplicate messages at the sink", float(duplicates), "msg", target="0"),
    ]


def _render_floor(events: list[Envelope], composer: Composer, now: datetime) -> float:
    """The templates' share of the first step: the same number of first messages rendered in memory."""
    from campaigns.delivery.templates import message_context
    from campaigns.domain.sequences import STANDARD

    step = STANDARD.steps[0]
    started = time.perf_counter()
    for e in events:
        snapshot = CustomerSnapshot.model_validate(e.payload["customer"])
        url = composer.links.unsubscribe(e.workspace_id, e.customer_id)
        context = message_context(
            snapshot, campaign_name=STANDARD.name, step=step, coupon=None, unsubscribe_url=url, now=now
        )
        composer.templates.render(step.template_id, context)
    return time.perf_counter() - started


async def _insert_floor(engine: object, rows: int) -> float:
    """One INSERT … SELECT generating the same number of enrolment-shaped rows in a scratch table."""
    from sqlalchemy.ext.asyncio import AsyncEngine

    assert isinstance(engine, AsyncEngine)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TEMP TABLE floor (LIKE enrolment INCLUDING ALL) ON COMMIT DROP"))
        started = time.perf_counter()
        await conn.execute(
            text(
                """
                INSERT INTO floor SELECT md5(g::text), 'bench', 'winback-standard', 'c' || g, 1, false, 20, now(), 0,
                       now(), 'active', false, NULL, NULL, NULL, '[{"kind": "enrolled"}]'::jsonb
                FROM generate_series(1, :n) AS g
                """
            ),
            {"n": rows},
        )
        return time.perf_counter() - started


async def _bare_smtp_rate(port: int, n: int, mail_dir: Path) -> float:
    """The sink's ceiling from this client: pre-built messages over the same number of connections."""
    if n == 0:
        return 0.0
    body = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: floor\r\n\r\n" + b"x" * 1500 + b"\r\n"
    queue = list(range(n))

    async def worker() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await smtp.connect()
        while queue:
            i = queue.pop()
            await smtp.sendmail("a@example.com", [f"floor{i}@example.com"], body)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return n / (time.perf_counter() - started)
