"""Scoring's consumers on a real PostgreSQL: leads scored from their events, standings from
`customer-changes`, customers rescored by their own events between refits, each change published once."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera.stack import Servers
from cartera_common.clock import SettableClock
from cartera_common.consumer import claim
from cartera_common.events import Envelope
from cartera_common.events.changes import ScoresUpdated
from cartera_common.topics import CAMPAIGN_OUTCOMES, CUSTOMER_CHANGES, EVENTS
from scoring.domain.rules import Band, FitRule, LeadRules, ScoringRules
from scoring.handlers import Handlers
from scoring.refit import refit
from scoring.rescore import rescore_workspace
from scoring.rules_store import save_rules
from scoring.scheduler import RefitScheduler
from scoring.tables import customer_activity, customer_order, customer_profile, plumbing, score, workspace_stats
from tests.integration.databases import migrated_engine

START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
HANDLERS = Handlers(SettableClock(NOW))


@pytest.fixture(scope="module")
async def engine(servers: Servers) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(servers, "scoring") as engine:
        yield engine


def env(ws: str, type_: str, cid: str, at: datetime, **payload: Any) -> Envelope:
    return Envelope(event_id=str(uuid.uuid4()), type=type_, workspace_id=ws, customer_id=cid,
                    occurred_at=at, received_at=at, payload=payload)  # fmt: skip


def changed(ws: str, cid: str, status: str, previous: str | None, at: datetime, **snapshot: Any) -> Envelope:
    payload = {"changes": ["status"], "previous": {"status": previous}, "customer": {"status": status, **snapshot}}
    return env(ws, "customer_changed", cid, at, **payload)


async def consume(engine: AsyncEngine, events: list[Envelope], topic: str = EVENTS) -> None:
    handler = {
        EVENTS: HANDLERS.apply_events,
        CUSTOMER_CHANGES: HANDLERS.apply_changes,
        CAMPAIGN_OUTCOMES: HANDLERS.apply_outcomes,
    }[topic]
    async with engine.begin() as conn:
        await handler(conn, await claim(conn, topic, events, outcome="applied"))


async def row(engine: AsyncEngine, ws: str, cid: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        query = select(score).where(score.c.workspace_id == ws, score.c.customer_id == cid)
        found = (await conn.execute(query)).mappings().first()
    return dict(found) if found else None


async def published(engine: AsyncEngine, ws: str, cid: str) -> list[ScoresUpdated]:
    """The `scores_updated` payloads staged for the customer, oldest first, read through the contract."""
    outbox = plumbing.outbox
    query = select(outbox.c.value).where(outbox.c.workspace_id == ws, outbox.c.key == f"{ws}:{cid}")
    async with engine.connect() as conn:
        values = [r[0] for r in await conn.execute(query.order_by(outbox.c.id))]
    return [ScoresUpdated.model_validate(orjson.loads(v)["payload"]) for v in values]


def buyers(ws: str, n: int, seed: int) -> list[Envelope]:
    """Customers who buy at their own pace around their own basket until they silently leave."""
    rng = random.Random(seed)
    out = []
    for c in range(n):
        day, rate, leave, spend = (
            rng.uniform(0, 300),
            rng.uniform(0.01, 0.1),
            rng.uniform(0.05, 0.4),
            rng.gammavariate(4, 12),
        )
        k = 0
        while day < 365:
            out.append(env(ws, "order_completed", f"c{c}", START + timedelta(days=day), order_id=f"c{c}-{k}",
                           amount=str(round(rng.gammavariate(6, spend / 6), 2))))  # fmt: skip
            k += 1
            if rng.random() < leave:
                break
            day += rng.expovariate(rate)
    return out


@pytest.fixture(scope="module")
async def fitted(engine: AsyncEngine) -> str:
    """A workspace of 300 buyers, fitted and scored as of NOW."""
    ws = "w-" + uuid.uuid4().hex[:8]
    await consume(engine, buyers(ws, 300, seed=3))
    await refit(engine, ws, as_of=NOW, now=NOW)
    return ws


async def pick(engine: AsyncEngine, ws: str, condition: Any) -> dict[str, Any]:
    async with engine.connect() as conn:
        query = select(score).where(score.c.workspace_id == ws, condition).order_by(score.c.customer_id).limit(1)
        found = (await conn.execute(query)).mappings().first()
    assert found is not None
    return dict(found)


async def test_a_lead_is_scored_from_its_events_and_published_once_however_often_they_arrive(
    engine: AsyncEngine,
) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]
    batch = [
        env(ws, "profile_updated", "p", NOW - timedelta(days=3), industry="56.10", region="Madrid",
            traits={"age_band": "25-34"}),
        env(ws, "demo_requested", "p", NOW - timedelta(days=1)),
        env(ws, "message_engagement", "p", NOW - timedelta(days=2), kind="opened"),
        env(ws, "message_engagement", "p", NOW - timedelta(days=2), kind="clicked"),
    ]  # fmt: skip
    await consume(engine, batch)
    await consume(engine, batch)  # redelivered: the inbox makes it a no-op
    first = await row(engine, ws, "p")
    assert first is not None and first["p_alive"] is None and first["lead_fit"] == 0
    assert 0 < first["lead_engagement"] < 50 and first["lead_score"] == pytest.approx(first["lead_engagement"])
    sent = await published(engine, ws, "p")
    assert len(sent) == 1 and sent[0].lead_score == pytest.approx(first["lead_score"])
    assert sent[0].channel == first["channel"] == "personal_email"

    await consume(engine, [env(ws, "quote_requested", "p", NOW)])
    after = await row(engine, ws, "p")
    assert after is not None and after["lead_score"] > first["lead_score"] + 1
    assert len(await published(engine, ws, "p")) == 2

    await consume(engine, [env(ws, "message_engagement", "p", NOW - timedelta(days=300), kind="opened")])
    assert len(await published(engine, ws, "p")) == 2  # an open ten half-lives old moves nothing worth telling


async def test_the_workspaces_rules_score_the_fit_and_pick_the_channel(engine: AsyncEngine) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]
    await consume(engine, [
        env(ws, "profile_updated", "hit", NOW, industry="56.10", company_size="11-50"),
        env(ws, "profile_updated", "miss", NOW, industry="47.11", company_size="11-50"),
        env(ws, "lead_captured", "hit", NOW), env(ws, "lead_captured", "miss", NOW),
    ])  # fmt: skip
    rules = ScoringRules(
        leads=LeadRules(
            fit_rules=[FitRule(field="industry", values=["56"], match="prefix", points=25)],
            bands=[Band(channel="call", min_score=30), Band(channel="email", min_score=0)],
        )
    )
    async with engine.begin() as conn:
        await save_rules(conn, ws, rules, now=NOW, by="test")
        await rescore_workspace(conn, ws, now=NOW)
    hit, miss = await row(engine, ws, "hit"), await row(engine, ws, "miss")
    assert hit is not None and miss is not None
    assert hit["lead_fit"] == 25 and miss["lead_fit"] == 0
    assert (hit["channel"], miss["channel"]) == ("call", "email")
    assert [s.channel for s in await published(engine, ws, "hit")] == ["email", "call"]


async def test_a_lapsed_customer_gets_a_winback_decision_and_comebacks_are_counted(
    engine: AsyncEngine, fitted: str
) -> None:
    ws = fitted
    target = await pick(engine, ws, score.c.fallback.is_(False))
    cid = target["customer_id"]
    before = len(await published(engine, ws, cid))
    lapsed = [changed(ws, cid, "lapsed", "active", NOW, tier="high", pareto=True, industry="56.10")]
    await consume(engine, lapsed, CUSTOMER_CHANGES)
    await consume(engine, lapsed, CUSTOMER_CHANGES)  # redelivered
    r = await row(engine, ws, cid)
    assert r is not None and r["winback_worth"] is not None and r["winback_intensity"] in ("full", "light", "none")
    assert r["expected_return"] == pytest.approx(r["p_reactivation"] * r["predicted_value"])
    # Its own lapse is the workspace's only history, with no return: the prior, shrunk by 20 / (1 + 20).
    assert r["p_reactivation"] == pytest.approx(r["p_alive"] * 20 / 21)
    sent = await published(engine, ws, cid)
    assert len(sent) == before + 1
    assert sent[-1].winback_worth == r["winback_worth"] and sent[-1].winback_intensity == r["winback_intensity"]
    assert (sent[-1].model_extra or {})["winback_cost"] == pytest.approx(r["winback_cost"])

    back_again = changed(ws, cid, "reactivated", "lapsed", NOW + timedelta(seconds=1), tier="high", pareto=True)
    await consume(engine, [back_again], CUSTOMER_CHANGES)
    back = await row(engine, ws, cid)
    assert back is not None and back["winback_worth"] is None  # back in the portfolio: no win-back to decide
    assert len(await published(engine, ws, cid)) == before + 2
    async with engine.connect() as conn:
        stats = (
            (await conn.execute(select(workspace_stats).where(workspace_stats.c.workspace_id == ws))).mappings().one()
        )
        profile = (await conn.execute(select(customer_profile).where(customer_profile.c.customer_id == cid,
                                                                     customer_profile.c.workspace_id == ws))).mappings().one()  # fmt: skip
    assert (stats["lapsed"], stats["returned"]) == (1, 1)
    assert (profile["status"], profile["tier"], profile["pareto"]) == ("reactivated", "high", True)


async def test_an_order_rescores_the_customer_with_the_current_fit_without_a_refit(
    engine: AsyncEngine, fitted: str
) -> None:
    ws = fitted
    target = await pick(engine, ws, (score.c.p_alive < 0.5) & score.c.fallback.is_(False))
    cid = target["customer_id"]
    before = len(await published(engine, ws, cid))
    await consume(engine, [env(ws, "order_completed", cid, NOW - timedelta(hours=1), order_id="fresh", amount="30")])
    r = await row(engine, ws, cid)
    assert r is not None and r["fit_id"] == target["fit_id"]
    assert r["p_alive"] > target["p_alive"] + 0.3  # bought again today: very likely still a customer
    sent = await published(engine, ws, cid)
    assert len(sent) == before + 1 and sent[-1].p_alive == pytest.approx(r["p_alive"])


async def test_cost_to_serve_beyond_the_margin_moves_a_customer_to_abandon(engine: AsyncEngine, fitted: str) -> None:
    ws = fitted
    target = await pick(engine, ws, score.c.quadrant.in_(("retain", "maintain")))
    cid = target["customer_id"]
    await consume(engine, [env(ws, "cost_recorded", cid, NOW - timedelta(days=10), amount="100000")])
    r = await row(engine, ws, cid)
    assert r is not None and r["quadrant"] == "abandon" and r["quadrant_reason"] == "costs more than it brings"
    assert r["value_now"] < 0
    assert (await published(engine, ws, cid))[-1].quadrant == "abandon"


async def test_a_prospect_who_buys_is_no_longer_a_lead(engine: AsyncEngine, fitted: str) -> None:
    ws = fitted
    await consume(engine, [env(ws, "trial_requested", "newcomer", NOW - timedelta(days=5))])
    lead = await row(engine, ws, "newcomer")
    assert lead is not None and lead["lead_score"] is not None and lead["p_alive"] is None
    await consume(engine, [env(ws, "order_completed", "newcomer", NOW, order_id="n1", amount="80")])
    bought = await row(engine, ws, "newcomer")
    assert bought is not None and bought["lead_score"] is None and bought["channel"] is None
    assert bought["p_alive"] == 1.0 and bought["fallback"] is True  # one purchase: the model's own answer
    assert [s.lead_score is None for s in await published(engine, ws, "newcomer")] == [False, True]


async def test_an_erased_customer_is_forgotten(engine: AsyncEngine, fitted: str) -> None:
    ws = fitted
    await consume(engine, [env(ws, "demo_requested", "gone", NOW), env(ws, "order_completed", "c5", NOW, order_id="x",
                                                                         amount="5")])  # fmt: skip
    await consume(engine, [env(ws, "customer_erased", "gone", NOW), env(ws, "customer_erased", "c5", NOW)])
    async with engine.connect() as conn:
        for table in (score, customer_profile, customer_activity, customer_order):
            query = select(table.c.customer_id).where(
                table.c.workspace_id == ws, table.c.customer_id.in_(("gone", "c5"))
            )
            assert (await conn.execute(query)).first() is None, table.name


async def test_the_daily_run_lets_engagement_decay_in_workspaces_without_orders(engine: AsyncEngine) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]
    await consume(engine, [env(ws, "quote_requested", "q", NOW), env(ws, "demo_requested", "q", NOW)])
    fresh = await row(engine, ws, "q")
    assert fresh is not None and fresh["channel"] == "personal_email"
    await RefitScheduler(engine, SettableClock(NOW + timedelta(days=60)), 86_400).tick()
    later = await row(engine, ws, "q")
    assert later is not None and later["lead_engagement"] < fresh["lead_engagement"] / 2  # two half-lives
    assert [s.channel for s in await published(engine, ws, "q")] == ["personal_email", "email"]


async def test_replicas_sharing_the_refit_timer_fit_each_workspace_once_per_interval(engine: AsyncEngine) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]
    orders = [
        env(ws, "order_completed", f"r{c}", START + timedelta(days=30 * k + c), order_id=f"r{c}-{k}", amount="20")
        for c in range(12)
        for k in range(1 + c % 4)
    ]
    await consume(engine, orders)
    later = SettableClock(NOW + timedelta(days=400))  # every earlier fit is past its interval by now
    replicas = [RefitScheduler(engine, later, 86_400), RefitScheduler(engine, later, 86_400)]
    await asyncio.gather(*(r.tick() for r in replicas))
    await replicas[0].tick()  # within the interval: nothing to do
    async with engine.connect() as conn:
        fits = (
            await conn.execute(
                text("SELECT kind, count(*) FROM model_fit WHERE workspace_id = :ws GROUP BY kind"), {"ws": ws}
            )
        ).all()
    assert fits and all(n == 1 for _, n in fits), fits


async def test_the_workspaces_own_winback_record_counts_treatment_ends_once(engine: AsyncEngine) -> None:
    ws = "w-" + uuid.uuid4().hex[:8]

    def ended(cid: str, outcome: str, control: bool = False) -> Envelope:
        return env(ws, "winback_ended", cid, NOW, campaign_id="winback-standard", outcome=outcome, control=control)

    outcomes = [
        ended("a", "reactivated"),
        ended("b", "no_response"),
        ended("c", "responded"),
        ended("d", "reactivated", control=True),  # came back without a message: not the campaign's
        ended("e", "cancelled"),  # nothing could be tried
        env(ws, "message_sent", "a", NOW, campaign_id="winback-standard", channel="email"),
    ]
    await consume(engine, outcomes, CAMPAIGN_OUTCOMES)
    await consume(engine, outcomes, CAMPAIGN_OUTCOMES)  # a redelivery changes nothing
    async with engine.connect() as conn:
        record = (
            await conn.execute(
                text("SELECT winbacks, winbacks_won FROM workspace_stats WHERE workspace_id = :ws"), {"ws": ws}
            )
        ).one()
    assert tuple(record) == (3, 1)
