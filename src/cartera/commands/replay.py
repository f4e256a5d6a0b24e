"""`cartera replay --since T`: republish ingest's intake log to `events` from T on.

The intake log is ingest's outbox, which its relay publishes from a position (transaction id, row
id). Replay moves that position back to the first event written at or after T, holding the
relay's own lock, so the relay republishes from there in the original order, with the original
event ids: consumers' inboxes skip what they already applied. Key announcements written since
ride along and are applied idempotently too. Ingest publishes, so it must be running; the command
waits until it has republished everything (unless --no-wait). T is when events were received,
not when they happened; the log reaches back INGEST_INTAKE_RETENTION_S (30 days by default).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera.commands import clients
from cartera.commands.base import EXIT_OK, CommandError, Subparsers, UsageError, add_command, note
from cartera.commands.connection import Connection, resolve
from cartera_common.topics import EVENTS

RELAY = "ingest"
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:k))")  # the relay's lock: no batch in flight meanwhile
_POSITION = text("SELECT txid, last_id FROM relay_state WHERE relay = :r")
_FIRST = text("SELECT txid, id FROM outbox WHERE topic = :t AND created_at >= :since ORDER BY txid, id LIMIT 1")
_LAST = text("SELECT txid, id FROM outbox ORDER BY txid DESC, id DESC LIMIT 1")
_LOG_START = text("SELECT min(created_at) FROM outbox WHERE topic = :t")
_BETWEEN = text(
    "SELECT count(*) FROM outbox WHERE topic = :t "
    "AND (txid, id) > (CAST(:txid AS xid8), :id) AND (txid, id) <= (CAST(:ptxid AS xid8), :pid)"
)
_MOVE = text(
    "UPDATE relay_state SET txid = CAST(:txid AS xid8), last_id = :id, updated_at = now() "
    "WHERE relay = :r AND (txid, last_id) > (CAST(:txid AS xid8), :id)"
)


@dataclass(frozen=True)
class Rewind:
    events: int  # events already published once that the relay publishes again
    log_start: datetime | None
    end: tuple[int, int] | None  # the last row at rewind time: replay is done when the relay is past it


def register(sub: Subparsers) -> None:
    p = add_command(sub, "replay", "republish the intake log to `events` since a moment", __doc__)
    p.add_argument(
        "--since",
        required=True,
        metavar="T",
        help="ISO 8601 moment (UTC unless it has an offset), e.g. 2026-11-20T10:00:00Z, or an age: 90m, 6h, 2d",
    )
    p.add_argument("--dry-run", action="store_true", help="only count what would be republished")
    p.add_argument("--no-wait", dest="wait", action="store_false", help="return once queued; ingest publishes")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for ingest to republish (300)")
    p.set_defaults(run=run)


def parse_since(value: str, now: datetime) -> datetime:
    if m := re.fullmatch(r"(\d+)\s*([smhdw])", value.strip()):
        return now - timedelta(**{_UNITS[m[2]]: int(m[1])})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"--since {value!r} is neither an ISO 8601 moment nor an age like 6h or 2d") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > now:
        raise UsageError(f"--since {value} is in the future")
    return moment


def run(args: argparse.Namespace) -> int:
    since = parse_since(args.since, datetime.now(UTC))
    return asyncio.run(replay(resolve(), since, dry_run=args.dry_run, wait=args.wait, timeout_s=args.timeout))


async def replay(conn: Connection, since: datetime, *, dry_run: bool, wait: bool, timeout_s: float) -> int:
    async with clients.database(conn, RELAY) as engine:
        done = await rewind(engine, since, dry_run=dry_run)
        if done.log_start is not None and done.log_start > since:
            note(f"the intake log reaches back to {done.log_start.isoformat()}; nothing older can be replayed")
        if done.end is None:
            print(f"no events written since {since.isoformat()}; nothing to replay")
            return EXIT_OK
        if done.events == 0:
            print(f"the events written since {since.isoformat()} are not published yet; ingest's relay publishes them")
            return EXIT_OK
        if dry_run:
            print(f"{done.events} events written since {since.isoformat()} would be republished to {EVENTS}")
            return EXIT_OK
        note(f"ingest's relay rewound: {done.events} events since {since.isoformat()} are being republished")
        if wait:
            await wait_for_relay(engine, done.end, timeout_s)
            print(f"republished {done.events} events to {EVENTS} with their original ids")
        else:
            print(f"queued {done.events} events for republishing to {EVENTS}; ingest's relay publishes them")
    return EXIT_OK


async def rewind(engine: AsyncEngine, since: datetime, *, dry_run: bool) -> Rewind:
    async with engine.begin() as db:
        await db.execute(_LOCK, {"k": "relay:" + RELAY})
        log_start = await db.scalar(_LOG_START, {"t": EVENTS})
        position = (await db.execute(_POSITION, {"r": RELAY})).first()
        first = (await db.execute(_FIRST, {"t": EVENTS, "since": since})).first()
        last = (await db.execute(_LAST)).first()
        if first is None or last is None:
            return Rewind(0, log_start, None)
        end = (int(last.txid), int(last.id))
        if position is None:
            return Rewind(0, log_start, end)  # the relay has published nothing yet
        target = {"txid": first.txid, "id": first.id - 1}
        bounds = target | {"t": EVENTS, "ptxid": position.txid, "pid": position.last_id}
        events = int(await db.scalar(_BETWEEN, bounds) or 0)
        if events and not dry_run:
            await db.execute(_MOVE, target | {"r": RELAY})
        return Rewind(events, log_start, end)


async def wait_for_relay(engine: AsyncEngine, end: tuple[int, int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        async with engine.connect() as db:
            position = (await db.execute(_POSITION, {"r": RELAY})).one()
        if (int(position.txid), int(position.last_id)) >= end:
            return
        if time.monotonic() > deadline:
            raise CommandError(
                f"ingest has not republished them within {timeout_s:g}s; is it running? They stay queued and "
                "ingest publishes them when it runs (`cartera status` shows its outbox backlog)"
            )
        await asyncio.sleep(0.2)
