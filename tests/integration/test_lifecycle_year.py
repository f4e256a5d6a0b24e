"""A year of history for a few hundred customers with known rhythms, classified as of now, then moved
through time by the sweep; every status is checked against one computed by hand from the rhythm.

Policy is the default: adaptive, 3 x the usual gap with a 90-day floor, 180 days for one-order
customers, lost 365 days after lapsing, new and reactivated for 90 days.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from cartera.stack import Servers
from cartera_common.settings import asyncpg_url
from tests.integration.segmenter_world import World, envelope, orders

START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)  # one year of history, imported "today"


def day(n: float) -> datetime:
    return START + timedelta(days=n)


@dataclass(frozen=True)
class Rhythm:
    """Orders every `gap` days from `first` to `last` (day numbers); `returned` adds one long absence."""

    first: int
    last: int
    gap: int
    returned: int | None = None  # the day of the first order after an absence

    def days(self) -> list[int]:
        if self.returned is None:
            return list(range(self.first, self.last + 1, self.gap))
        before = list(range(self.first, self.first + 4 * self.gap, self.gap))
        return before + list(range(self.returned, self.last + 1, self.gap))

    def expected(self, at: datetime) -> str:
        """By hand: the suspension point is 3 x gap, never under 90 days; 180 with a single order."""
        ds = self.days()
        threshold = 180 if len(ds) == 1 else max(90, 3 * self.gap)
        lapse = day(ds[-1] + threshold)
        if at >= lapse + timedelta(days=365):
            return "lost"
        if at >= lapse:
            return "lapsed"
        if self.returned is not None and at < day(self.returned + 90):
            return "reactivated"
        if at < day(ds[0] + 90):
            return "new"
        return "active"


def portfolio(rng: random.Random) -> dict[str, Rhythm]:
    out: dict[str, Rhythm] = {}
    for i in range(300):
        gap = rng.choice([7, 14, 30, 45, 60, 120])
        kind = i % 5
        first = rng.randrange(280, 360) if kind == 2 else rng.randrange(0, 200)  # kind 2: recent first orders
        last = rng.randrange(first, 365)
        if kind == 0:
            rhythm = Rhythm(first, first, 1)  # a single order
        elif kind == 1 and first < 100:
            rhythm = Rhythm(first, 360, 30, returned=first + 120 + 30 + rng.randrange(91, 150))
        else:
            rhythm = Rhythm(first, max(last, first), gap)
        if rhythm.returned is not None and rhythm.returned > 360:
            rhythm = Rhythm(first, max(last, first), gap)
        out[f"c{i:03d}"] = rhythm
    return out


@pytest.fixture
async def world(servers: Servers) -> AsyncIterator[World]:
    url = await asyncio.to_thread(servers.migrated_database)  # it runs its own event loop
    engine = create_async_engine(asyncpg_url(url), connect_args={"server_settings": {"search_path": "segmenter"}})
    yield World(engine, NOW)
    await engine.dispose()


async def test_a_year_of_history_is_classified_as_of_now_and_time_moves_everyone_right(world: World) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]
    rng = random.Random(7)
    rhythms = portfolio(rng)
    events = [e for cid, r in rhythms.items() for e in orders(ws, cid, [day(d) for d in r.days()])]
    events += [envelope(ws, "lead-1", "demo_requested", day(300))]
    events += [envelope(ws, "known-1", "profile_updated", day(10), name="Ana")]
    rng.shuffle(events)  # late and out-of-order arrival: the status depends on event time only
    await world.consume(events)

    statuses = await world.statuses(ws)
    expected = {cid: r.expected(NOW) for cid, r in rhythms.items()}
    assert {c: statuses[c] for c in rhythms} == expected
    assert (statuses["lead-1"], statuses["known-1"]) == ("potential", "prospect")
    assert set(expected.values()) >= {"new", "active", "lapsed", "reactivated"}

    for later in (30, 75, 120, 200, 400, 700):
        at = NOW + timedelta(days=later)
        await world.advance_to(at)
        statuses = await world.statuses(ws)
        assert {c: statuses[c] for c in rhythms} == {cid: r.expected(at) for cid, r in rhythms.items()}, later


async def test_every_transition_is_in_the_history_with_its_time_reason_and_policy(world: World) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]
    await world.consume(orders(ws, "c", [day(300), day(330), day(360)]))  # usual gap 30 -> lapses after 90
    await world.advance_to(NOW + timedelta(days=100))
    history = await world.rows(
        "SELECT from_status, to_status, at, reason, policy_version FROM status_change"
        " WHERE workspace_id = :ws ORDER BY id",
        ws=ws,
    )
    assert [(h["from_status"], h["to_status"], h["at"]) for h in history] == [
        ("prospect", "new", day(300)),
        ("new", "lapsed", day(360 + 90)),
    ]
    assert "past the suspension point" in history[1]["reason"]
    assert {h["policy_version"] for h in history} == {0}


async def test_the_sweep_looks_only_at_customers_whose_time_has_come(world: World) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]
    await world.consume(orders(ws, "soon", [day(200)]) + orders(ws, "later", [day(360)]))
    assert await world.advance_to(NOW + timedelta(days=1)) == 0
    assert await world.advance_to(day(200 + 180)) == 1  # "soon" lapses; "later" is not due
    assert (await world.statuses(ws))["soon"] == "lapsed"


async def test_a_replayed_batch_changes_nothing_and_publishes_nothing_more(world: World) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]
    batch = orders(ws, "c", [day(100), day(130)]) + [
        envelope(ws, "c", "cost_recorded", day(131), amount=5),
        envelope(ws, "c", "complaint_opened", day(132), complaint_id="k1", reason_code="late"),
    ]
    await world.consume(batch)
    before = await world.rows("SELECT * FROM customer WHERE workspace_id = :ws", ws=ws)
    published = await world.rows("SELECT message_id FROM outbox WHERE workspace_id = :ws", ws=ws)
    await world.consume(batch)
    assert await world.rows("SELECT * FROM customer WHERE workspace_id = :ws", ws=ws) == before
    assert await world.rows("SELECT message_id FROM outbox WHERE workspace_id = :ws", ws=ws) == published
    assert before[0]["cost_to_serve"] == 5 and before[0]["revenue"] == 40
