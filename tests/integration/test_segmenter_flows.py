"""The segmenter's other inputs: issues, scores, campaign outcomes, consent and policy changes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from cartera.stack import Servers
from cartera_common.events.changes import CustomerChanged
from cartera_common.settings import asyncpg_url
from segmenter.domain.policy import Policy, Suspension
from segmenter.policy_store import save_policy
from tests.integration.segmenter_world import World, envelope, orders

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture
async def world(servers: Servers) -> AsyncIterator[World]:
    url = await asyncio.to_thread(servers.migrated_database)
    engine = create_async_engine(asyncpg_url(url), connect_args={"server_settings": {"search_path": "segmenter"}})
    yield World(engine, NOW)
    await engine.dispose()


@pytest.fixture
def ws() -> str:
    return "w-" + uuid.uuid4().hex[:8]


async def changes(world: World, ws: str) -> list[dict[str, Any]]:
    rows = await world.rows(
        "SELECT value FROM outbox WHERE workspace_id = :ws AND topic = 'customer-changes' ORDER BY id", ws=ws
    )
    out = []
    for r in rows:
        envelope = orjson.loads(r["value"])
        CustomerChanged.model_validate(envelope["payload"])  # the published contract holds
        out.append(envelope["payload"])
    return out


async def test_a_customer_who_lapses_with_an_open_complaint_left_unhappy_and_campaigns_hear_why(
    world: World, ws: str
) -> None:
    await world.consume(
        orders(ws, "c", [ago(300), ago(270), ago(240)])
        + [
            envelope(ws, "c", "complaint_opened", ago(235), complaint_id="k1", reason_code="damaged"),
            envelope(ws, "c", "delivery_late", ago(238), order_id="c-2", reason="carrier"),
            envelope(ws, "c", "profile_updated", ago(200), name="Ana", email="ana@example.com"),
        ]
    )
    row = (await world.rows("SELECT status, unhappy, leave_reasons FROM customer WHERE workspace_id = :ws", ws=ws))[0]
    assert row == {"status": "lapsed", "unhappy": True, "leave_reasons": ["delivery_late:carrier", "complaint:damaged"]}
    last = (await changes(world, ws))[-1]
    assert last["customer"]["status"] == "lapsed" and last["customer"]["unhappy"] is True
    assert last["customer"]["email"] == "ana@example.com" and last["customer"]["order_count"] == 3
    assert "status" in last["changes"] and last["reason"]


async def test_campaigns_hear_when_a_lapsed_customer_costs_more_than_it_brought(world: World, ws: str) -> None:
    await world.consume(
        orders(ws, "dear", [ago(300), ago(270)], amount=20.0)
        + [envelope(ws, "dear", "cost_recorded", ago(260), amount=55)]
        + orders(ws, "fine", [ago(300), ago(270)], amount=20.0)
        + [envelope(ws, "fine", "cost_recorded", ago(260), amount=5)]
    )
    published = await changes(world, ws)
    lapsed = [c["customer"] for c in published if c["customer"]["status"] == "lapsed"]
    assert len(lapsed) == 2
    verdicts = sorted(c["unprofitable"] for c in lapsed)
    assert verdicts == [False, True]  # 40 of revenue against 55 of cost; against 5


async def test_a_resolved_complaint_leaves_a_reason_but_not_unhappiness(world: World, ws: str) -> None:
    await world.consume(
        orders(ws, "c", [ago(300)])
        + [
            envelope(ws, "c", "complaint_opened", ago(299), complaint_id="k1", reason_code="rude"),
            envelope(ws, "c", "complaint_resolved", ago(290), complaint_id="k1"),
        ]
    )
    row = (await world.rows("SELECT unhappy, leave_reasons FROM customer WHERE workspace_id = :ws", ws=ws))[0]
    assert row == {"unhappy": False, "leave_reasons": ["complaint:rude"]}


async def test_a_winback_ending_without_response_makes_the_customer_lost(world: World, ws: str) -> None:
    await world.consume(orders(ws, "c", [ago(200)]))
    assert (await world.statuses(ws))["c"] == "lapsed"
    ended = envelope(ws, "c", "winback_ended", ago(1), outcome="no_response", campaign_id="standard")
    await world.consume([ended], topic="campaign-outcomes")
    assert (await world.statuses(ws))["c"] == "lost"


async def test_messages_and_answers_make_responders_and_non_responders(world: World, ws: str) -> None:
    await world.consume(orders(ws, "a", [ago(200)]) + orders(ws, "b", [ago(200)]))
    await world.consume(
        [envelope(ws, "a", "message_sent", ago(20)), envelope(ws, "b", "message_sent", ago(20))],
        topic="campaign-outcomes",
    )
    await world.consume([envelope(ws, "a", "message_engagement", ago(19), kind="clicked")])
    rows = await world.rows("SELECT customer_id, responsiveness FROM customer WHERE workspace_id = :ws", ws=ws)
    assert {r["customer_id"]: r["responsiveness"] for r in rows} == {"a": "responder", "b": "non_responder"}


async def test_p_alive_moves_customers_under_a_probability_policy(world: World, ws: str) -> None:
    policy = Policy(suspension=Suspension(mode="probability", threshold=0.4, days=365))
    async with world.engine.begin() as conn:
        await save_policy(conn, ws, policy, now=NOW, by="test")
    await world.consume(orders(ws, "c", [ago(120), ago(100)]))
    assert (await world.statuses(ws))["c"] == "active"
    await world.consume([envelope(ws, "c", "scores_updated", ago(2), p_alive=0.25)], topic="scores")
    assert (await world.statuses(ws))["c"] == "lapsed"
    history = await world.rows("SELECT reason, policy_version FROM status_change WHERE workspace_id = :ws", ws=ws)
    assert history[-1]["policy_version"] == 1 and "P(alive) 0.25" in history[-1]["reason"]


async def test_a_policy_change_re_evaluates_the_whole_portfolio(world: World, ws: str) -> None:
    await world.consume(orders(ws, "pizza", [ago(100)]) + orders(ws, "flowers", [ago(100)]))
    await world.consume([envelope(ws, "pizza", "profile_updated", ago(60), industry="56.10")])
    assert await world.statuses(ws) == {"pizza": "active", "flowers": "active"}
    short = {"industry": "56", "suspension": {"mode": "fixed", "days": 60}}
    async with world.engine.begin() as conn:
        await save_policy(conn, ws, Policy.model_validate({"overrides": [short]}), now=NOW, by="test")
    assert await world.advance_to(NOW) == 2
    assert await world.statuses(ws) == {"pizza": "lapsed", "flowers": "active"}


async def test_consent_follows_the_latest_decision_per_channel(world: World, ws: str) -> None:
    await world.consume(
        [
            envelope(ws, "c", "consent_changed", ago(10), channel="email", granted=True),
            envelope(ws, "c", "consent_changed", ago(30), channel="email", granted=False),
            envelope(ws, "c", "unsubscribed", ago(5), channel="sms"),
        ]
    )
    await world.consume([envelope(ws, "c", "consent_changed", ago(40), channel="email", granted=False)])
    row = (await world.rows("SELECT consent FROM customer WHERE workspace_id = :ws", ws=ws))[0]
    assert {ch: v["granted"] for ch, v in row["consent"].items()} == {"email": True, "sms": False}


async def test_an_erased_customer_leaves_nothing_behind(world: World, ws: str) -> None:
    await world.consume(orders(ws, "c", [ago(10)]) + [envelope(ws, "c", "complaint_opened", ago(9), complaint_id="k")])
    await world.consume([envelope(ws, "c", "customer_erased", ago(1))])
    for table in ("customer", "customer_order", "customer_issue", "timeline", "status_change"):
        assert await world.rows(f"SELECT 1 FROM {table} WHERE workspace_id = :ws", ws=ws) == [], table  # noqa: S608


async def test_a_new_email_is_published_but_a_repeat_order_that_changes_nothing_is_not(world: World, ws: str) -> None:
    await world.consume(orders(ws, "c", [ago(200), ago(100)]))
    first = len(await changes(world, ws))
    await world.consume([envelope(ws, "c", "order_completed", ago(99), order_id="again", amount=5)])
    assert len(await changes(world, ws)) == first
    await world.consume([envelope(ws, "c", "profile_updated", ago(98), email="new@example.com")])
    last = (await changes(world, ws))[-1]
    assert last["changes"] == ["profile"] and last["previous"]["email"] is None
    assert last["customer"]["email"] == "new@example.com"


@pytest.mark.parametrize(
    ("topic", "kind", "payload", "effect"),
    [
        ("scores", "scores_updated", {"p_alive": 0.1}, ("lapsed", "unknown")),
        ("campaign-outcomes", "winback_ended", {"outcome": "no_response", "days": 300}, ("lost", "unknown")),
        ("campaign-outcomes", "message_sent", {"campaign_id": "standard"}, ("active", "non_responder")),
    ],
)
async def test_a_replayed_score_or_outcome_changes_nothing(
    world: World, ws: str, topic: str, kind: str, payload: dict[str, Any], effect: tuple[str, str]
) -> None:
    async with world.engine.begin() as conn:
        await save_policy(conn, ws, Policy(suspension=Suspension(mode="probability")), now=NOW, by="test")
    back = payload.pop("days", 0)  # how much longer ago the orders were
    await world.consume(orders(ws, "c", [ago(200 + back), ago(170 + back)]))  # active unless that is long ago
    batch = [envelope(ws, "c", kind, ago(1), **payload)]
    await world.consume(batch, topic=topic)
    before = await world.rows("SELECT * FROM customer WHERE workspace_id = :ws", ws=ws)
    history = await world.rows("SELECT id FROM status_change WHERE workspace_id = :ws", ws=ws)
    published = await world.rows("SELECT message_id FROM outbox WHERE workspace_id = :ws", ws=ws)
    await world.consume(batch, topic=topic)
    assert await world.rows("SELECT * FROM customer WHERE workspace_id = :ws", ws=ws) == before
    assert await world.rows("SELECT id FROM status_change WHERE workspace_id = :ws", ws=ws) == history
    assert await world.rows("SELECT message_id FROM outbox WHERE workspace_id = :ws", ws=ws) == published
    assert (before[0]["status"], before[0]["responsiveness"]) == effect
