"""The win-back engine on a real PostgreSQL: lapses enrol, time steps the sequence, customers stop it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from campaigns import catalogue
from campaigns.domain.pacing import PacingRules
from campaigns.domain.sequences import NURTURE, STANDARD
from campaigns.reports import report
from campaigns.scheduler import step_all
from cartera.stack import Servers
from cartera_common.topics import SCORES
from tests.integration.campaign_world import CampaignWorld, envelope, treated_id
from tests.integration.databases import migrated_engine

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC: inside sending hours
STANDARD_DAYS = [0, 7, 14, 24, 34, 48]  # the standard sequence's delays, summed


@pytest.fixture
async def world(servers: Servers) -> AsyncIterator[CampaignWorld]:
    async with migrated_engine(servers, "campaigns") as engine:
        yield CampaignWorld(engine, NOW)


@pytest.fixture
def ws() -> str:
    return "w-" + uuid.uuid4().hex[:8]


async def test_a_lapse_runs_the_standard_sequence_to_the_end_and_reports_the_customer_lost(
    world: CampaignWorld, ws: str
) -> None:
    cid = treated_id(STANDARD.id)
    await world.lapse(ws, cid, tier="medium", customer_since="2023-03-01T00:00:00Z", favourite_category="flowers")
    [e] = await world.enrolments(ws, cid)
    assert (e["campaign_id"], e["state"], e["control"], e["cycle"]) == (STANDARD.id, "active", False, 1)
    await world.tick()
    [queued] = await world.messages(ws, cid)
    assert queued["state"] == "queued"

    await world.run_until(NOW + timedelta(days=70))

    sent = await world.messages(ws, cid)
    assert [m["step"] for m in sent] == [0, 1, 2, 3, 4, 5]
    assert [(m["created_at"] - NOW).days for m in sent] == STANDARD_DAYS
    first = sent[0]
    assert first["recipient"] == f"{cid}@example.test"
    assert "Ana" in first["body"] and "2023" in first["body"] and "flowers" in first["body"]
    assert "http://campaigns.test/unsubscribe/" in first["body"]
    coupons = [m["coupon"] for m in sent]
    assert coupons[0] is None and all(coupons[2:5]) and len(set(coupons[2:5])) == 3  # the offers, each its own code

    [e] = await world.enrolments(ws, cid)
    assert (e["state"], e["outcome"]) == ("ended", "no_response")
    kinds = [(o["type"], o["payload"].get("outcome")) for o in await world.outcomes(ws, cid)]
    assert kinds == [("winback_enrolled", None), ("winback_ended", "no_response")]


async def test_an_order_mid_sequence_stops_it_and_credits_the_step_whose_coupon_it_carries(
    world: CampaignWorld, ws: str
) -> None:
    cid = treated_id(STANDARD.id, "o")
    await world.lapse(ws, cid)
    await world.run_until(NOW + timedelta(days=15))
    sent = await world.messages(ws, cid)
    assert len(sent) == 3
    coupon = sent[2]["coupon"]
    await world.consume(
        [
            envelope(
                ws, cid, "order_completed", world.clock.now(), order_id="o-1", amount=80.0, coupon_code=coupon.lower()
            )
        ]
    )
    await world.run_until(NOW + timedelta(days=90))

    assert len(await world.messages(ws, cid)) == 3
    [e] = await world.enrolments(ws, cid)
    assert (e["state"], e["outcome"]) == ("ended", "reactivated")
    assert e["credit"] == {"step": 2, "variant": "default", "by_coupon": True, "amount": 80.0}
    ended = [o for o in await world.outcomes(ws, cid) if o["type"] == "winback_ended"]
    assert [o["payload"]["outcome"] for o in ended] == ["reactivated"]


async def test_an_order_before_any_step_is_credited_to_no_step_and_queued_messages_are_withheld(
    world: CampaignWorld, ws: str
) -> None:
    cid = treated_id(STANDARD.id, "q")
    await world.lapse(ws, cid)
    await world.tick()  # step 0 queued, not yet delivered
    await world.consume([envelope(ws, cid, "order_completed", world.clock.now(), order_id="o-1", amount=10.0)])
    [m] = await world.messages(ws, cid)
    assert m["state"] == "withheld"
    [e] = await world.enrolments(ws, cid)
    assert e["outcome"] == "reactivated"


async def test_an_unsubscribe_stops_every_future_message(world: CampaignWorld, ws: str) -> None:
    cid = treated_id(STANDARD.id, "u")
    await world.lapse(ws, cid)
    await world.run_until(NOW + timedelta(days=8))
    await world.consume([envelope(ws, cid, "unsubscribed", world.clock.now(), channel="email")])
    await world.run_until(NOW + timedelta(days=80))
    assert len(await world.messages(ws, cid)) == 2
    [e] = await world.enrolments(ws, cid)
    assert (e["state"], e["outcome"]) == ("ended", "cancelled")
    # A later lapse does not start another email sequence for someone who withdrew email consent.
    await world.lapse(ws, cid, status="lost", consent={"email": False})
    await world.run_until(NOW + timedelta(days=300))
    assert len(await world.messages(ws, cid)) == 2


async def test_the_control_group_walks_the_sequence_but_is_never_messaged(world: CampaignWorld, ws: str) -> None:
    cid = treated_id(STANDARD.id, "k", control=True)
    await world.lapse(ws, cid)
    await world.run_until(NOW + timedelta(days=70))
    assert await world.messages(ws, cid) == []
    [e] = await world.enrolments(ws, cid)
    assert e["control"] and e["outcome"] == "no_response"
    assert [h["kind"] for h in e["path"]].count("withheld") == len(STANDARD.steps)


async def test_a_click_without_an_order_moves_the_customer_to_nurture(world: CampaignWorld, ws: str) -> None:
    cid = treated_id(STANDARD.id, "r")
    await world.lapse(ws, cid)
    await world.tick()
    [m] = await world.messages(ws, cid)
    await world.consume(
        [envelope(ws, cid, "message_engagement", NOW + timedelta(hours=1), kind="clicked", message_id=m["message_id"])]
    )
    first, second = await world.enrolments(ws, cid)
    assert (first["campaign_id"], first["outcome"]) == (STANDARD.id, "responded")
    assert (second["campaign_id"], second["state"]) == (NURTURE.id, "active")
    [m] = await world.messages(ws, cid)
    assert m["clicked_at"] is not None
    kinds = [o["type"] for o in await world.outcomes(ws, cid)]
    assert kinds == ["winback_enrolled", "customer_responded", "winback_ended", "winback_enrolled"]


async def test_the_frequency_cap_defers_a_message_instead_of_dropping_it(world: CampaignWorld, ws: str) -> None:
    async with world.engine.begin() as conn:
        await catalogue.save_pacing(conn, ws, PacingRules(cap_messages=1, cap_days=7), NOW)
    cid = treated_id(STANDARD.id, "f")
    await world.lapse(ws, cid)
    await world.tick()  # step 0 today
    [m] = await world.messages(ws, cid)
    async with world.engine.begin() as conn:  # as the dispatcher would have, within the second
        await conn.execute(
            text("UPDATE message SET state = 'sent', sent_at = :at WHERE message_id = :id"),
            {"at": NOW, "id": m["message_id"]},
        )
    await world.consume(
        [envelope(ws, cid, "message_engagement", NOW + timedelta(hours=1), kind="replied", message_id=m["message_id"])]
    )
    # Nurture's first step falls due on day 3, inside the week the cap allows one message: it waits for day 7.
    await world.run_until(NOW + timedelta(days=10))
    later = (await world.messages(ws, cid))[1:]
    assert [m["campaign_id"] for m in later] == [NURTURE.id]
    assert later[0]["created_at"] == NOW + timedelta(days=7)
    nurture = (await world.enrolments(ws, cid))[1]
    assert any(h["kind"] == "deferred" and "frequency cap" in h["detail"] for h in nurture["path"])


async def test_quiet_hours_follow_the_customers_own_time_zone(world: CampaignWorld, ws: str) -> None:
    cid = treated_id(STANDARD.id, "t")
    await world.lapse(ws, cid, time_zone="America/New_York")  # 10:00 UTC is 05:00 in New York
    await world.run_until(NOW + timedelta(hours=6), step=timedelta(hours=1))
    [m] = await world.messages(ws, cid)
    assert m["created_at"] == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # 09:00 in New York


async def test_the_daily_limit_works_a_backlog_off_day_by_day(world: CampaignWorld, ws: str) -> None:
    async with world.engine.begin() as conn:
        await catalogue.save_pacing(conn, ws, PacingRules(daily_limit=2), NOW)
    customers = [treated_id(STANDARD.id, f"d{i}") for i in range(5)]
    for cid in customers:
        await world.lapse(ws, cid)
    await world.tick()
    firsts = await world.rows("SELECT created_at FROM message WHERE workspace_id = :ws ORDER BY created_at", ws=ws)
    assert len(firsts) == 2
    await world.run_until(NOW + timedelta(days=2), step=timedelta(hours=1))
    days = await world.rows(
        "SELECT date(created_at) AS day, count(*) AS n FROM message WHERE workspace_id = :ws AND step = 0 GROUP BY 1 ORDER BY 1",
        ws=ws,
    )
    assert [d["n"] for d in days] == [2, 2, 1]


async def test_scoring_saying_not_worth_it_keeps_the_customer_out(world: CampaignWorld, ws: str) -> None:
    cid = treated_id(STANDARD.id, "s")
    await world.consume(
        [envelope(ws, cid, "scores_updated", NOW - timedelta(hours=1), winback_worth=False, winback_intensity="none")],
        topic=SCORES,
    )
    await world.lapse(ws, cid)
    assert await world.enrolments(ws, cid) == []


async def test_lost_customers_come_back_round_after_the_cool_off(world: CampaignWorld, ws: str) -> None:
    cid = treated_id(STANDARD.id, "l")
    await world.lapse(ws, cid)
    await world.run_until(NOW + timedelta(days=70), step=timedelta(days=1))
    await world.lapse(ws, cid, status="lost")  # the segmenter's answer to no_response
    assert len(await world.enrolments(ws, cid)) == 1  # still cooling off
    world.clock.set(NOW + timedelta(days=62 + 181))
    assert await world.reenter() == 1
    first, second = await world.enrolments(ws, cid)
    assert (second["cycle"], second["state"]) == (2, "active")
    assert second["control"] == first["control"]  # the same group in every cycle


async def test_the_report_compares_treatment_with_control(world: CampaignWorld, ws: str) -> None:
    treated = [treated_id(STANDARD.id, f"a{i}") for i in range(6)]
    held = [treated_id(STANDARD.id, f"b{i}", control=True) for i in range(3)]
    for cid in treated + held:
        await world.lapse(ws, cid)
    await world.run_until(NOW + timedelta(days=15), step=timedelta(days=1))
    coupon = (await world.messages(ws, treated[0]))[2]["coupon"]
    at = world.clock.now()
    await world.consume(
        [
            envelope(ws, treated[0], "order_completed", at, order_id="x1", amount=90.0, coupon_code=coupon),
            envelope(ws, treated[1], "order_completed", at, order_id="x2", amount=50.0),
            envelope(ws, held[0], "order_completed", at, order_id="x3", amount=40.0),
        ]
    )
    async with world.engine.connect() as conn:
        r = await report(conn, ws, STANDARD.id)
    assert (r.treatment.customers, r.treatment.reactivated, r.treatment.revenue) == (6, 2, 140.0)
    assert (r.control.customers, r.control.reactivated, r.control.revenue) == (3, 1, 40.0)
    assert r.uplift is not None
    assert r.uplift.rate_uplift == pytest.approx(2 / 6 - 1 / 3)
    assert r.offer_cost == 0.0  # step 2 is the incentive, not money
    line = {(s.step, s.variant): s for s in r.steps}
    assert line[(2, "default")].reactivated == 2 and line[(2, "default")].by_coupon == 1
    assert line[(0, "default")].sent == 0  # queued, not delivered: the dispatcher does not run here
    assert any("fewer than" in n for n in r.notes)


async def test_a_workspace_template_replaces_the_built_in_one_in_what_is_sent(world: CampaignWorld, ws: str) -> None:
    async with world.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO template (workspace_id, template_id, subject, body, updated_at) "
                "VALUES (:ws, 'standard.personal', 'Hola {{ first_name }}', 'Te echamos de menos.', :at)"
            ),
            {"ws": ws, "at": NOW},
        )
    cid = treated_id(STANDARD.id, "tpl")
    await world.lapse(ws, cid)
    await world.tick()
    [m] = await world.messages(ws, cid)
    assert m["subject"] == "Hola Ana" and m["body"].startswith("Te echamos de menos.")
    assert "/unsubscribe/" in m["body"]  # added even though the template left it out
    other = "w-" + uuid.uuid4().hex[:8]  # another workspace keeps the built-in copy
    await world.lapse(other, cid)
    await world.tick()
    [theirs] = await world.messages(other, cid)
    assert theirs["subject"] != "Hola Ana"


async def test_a_customer_who_costs_more_than_they_bring_is_not_enrolled(world: CampaignWorld, ws: str) -> None:
    cid = treated_id(STANDARD.id, "cost")
    await world.lapse(ws, cid, unprofitable=True)
    await world.lapse(ws, cid + "-ok", unprofitable=False)
    assert await world.enrolments(ws, cid) == []
    assert len(await world.enrolments(ws, cid + "-ok")) == 1


async def test_two_schedulers_working_side_by_side_step_each_enrolment_once(world: CampaignWorld, ws: str) -> None:
    async with world.engine.begin() as conn:
        await catalogue.save_pacing(conn, ws, PacingRules(daily_limit=100_000), NOW)
    customers = [treated_id(STANDARD.id, f"r{i}") for i in range(60)]
    for cid in customers:
        await world.lapse(ws, cid)
    # Two replicas' ticks at once, in small chunks so they interleave: SKIP LOCKED shares the work.
    stepped = await asyncio.gather(
        step_all(world.engine, world.composer, world.clock, chunk=7),
        step_all(world.engine, world.composer, world.clock, chunk=7),
    )
    assert sum(stepped) == len(customers)
    sent = await world.rows("SELECT customer_id, step FROM message WHERE workspace_id = :ws", ws=ws)
    assert sorted(r["customer_id"] for r in sent) == sorted(customers)  # one first message each
    assert {r["step"] for r in sent} == {0}
