"""The whole sequence reaches a real SMTP server at the right times as the clock advances, and a
webhook step is retried with the same idempotency key until the receiver takes it."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from campaigns import catalogue
from campaigns.delivery.channels import senders_from
from campaigns.delivery.config import DeliverySettings
from campaigns.dispatcher import Dispatcher
from campaigns.domain.model import Campaign, Step
from campaigns.domain.sequences import STANDARD
from cartera.stack import Servers
from tests.integration.campaign_world import CampaignWorld, envelope, treated_id
from tests.integration.databases import migrated_engine

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inbox:
    messages: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(BytesParser(policy=policy.default).parsebytes(envelope.original_content))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
async def world(servers: Servers) -> AsyncIterator[CampaignWorld]:
    async with migrated_engine(servers, "campaigns") as engine:
        yield CampaignWorld(engine, NOW)


async def test_the_standard_sequence_arrives_step_by_step_and_an_order_stops_it(
    world: CampaignWorld, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    ws, cid = "w-" + uuid.uuid4().hex[:6], treated_id(STANDARD.id, "mail")
    settings = DeliverySettings(campaigns_smtp_host="127.0.0.1", campaigns_smtp_port=port)
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(world.engine, senders_from(settings, client), world.composer.links)
        await world.lapse(ws, cid, customer_since="2023-05-01T00:00:00Z", order_count=14, favourite_category="flowers")

        async def day(n: int) -> list[str]:
            await world.run_until(NOW + timedelta(days=n), step=timedelta(days=1))
            await dispatcher.drain()
            return [str(m["Subject"]) for m in handler.messages]

        first = await day(0)
        assert len(first) == 1
        body = handler.messages[0].get_body(preferencelist=("plain",)).get_content()
        assert "2023" in body and "14 orders" in body and "flowers" in body
        assert handler.messages[0]["To"] == f"{cid}@example.test"
        assert handler.messages[0]["List-Unsubscribe"].startswith("<http://campaigns.test/unsubscribe/")
        assert len(await day(6)) == 1  # nothing before day 7
        assert len(await day(7)) == 2
        assert len(await day(14)) == 3
        coupon = (await world.messages(ws, cid))[2]["coupon"]
        assert coupon and coupon in handler.messages[2].get_body(preferencelist=("plain",)).get_content()
        await world.consume(
            [envelope(ws, cid, "order_completed", world.clock.now(), order_id="o9", amount=64.0, coupon_code=coupon)]
        )
        assert len(await day(70)) == 3  # the order stopped it
    [e] = await world.enrolments(ws, cid)
    assert (e["outcome"], e["credit"]["step"], e["credit"]["by_coupon"]) == ("reactivated", 2, True)
    states = [m["state"] for m in await world.messages(ws, cid)]
    assert states == ["sent", "sent", "sent"]


async def test_a_webhook_step_is_retried_with_the_same_idempotency_key_until_it_is_taken(world: CampaignWorld) -> None:
    seen: list[tuple[str, str]] = []
    answers = iter([503, 503, 200])

    async def app(scope: Any, receive: Any, send: Any) -> None:  # a tiny ASGI receiver
        assert scope["type"] == "http"
        headers = dict(scope["headers"])
        seen.append((headers[b"idempotency-key"].decode(), headers[b"x-cartera-signature"].decode()))
        status = next(answers)
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": b'{"id": "crm-1"}'})

    ws, cid = "w-" + uuid.uuid4().hex[:6], treated_id("hooks", "h")
    hooks = Campaign(
        id="hooks",
        name="Webhook win-back",
        control_share=0.0,
        priority=100,  # above every ready-made campaign, so it is the one chosen
        steps=tuple(
            Step(delay_days=7 * i, channel="webhook", template_id="standard.personal", call_to_action="Come back")
            for i in range(4)
        ),
    )
    async with world.engine.begin() as conn:
        await catalogue.save(conn, ws, hooks, campaign_id="hooks", enabled=True, at=NOW, by="test")
    settings = DeliverySettings(campaigns_webhook_url="http://receiver.test/hook", campaigns_webhook_secret="s3cret")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        dispatcher = Dispatcher(world.engine, senders_from(settings, client), world.composer.links)
        await world.lapse(ws, cid)
        await world.tick()
        for _ in range(3):
            await dispatcher.drain()
            async with world.engine.begin() as conn:  # skip the backoff wait
                await conn.execute(text("UPDATE message SET next_attempt_at = now() WHERE state = 'retrying'"))
    [m] = await world.messages(ws, cid)
    assert (m["state"], m["attempts"]) == ("sent", 3), m["error"]
    assert len({key for key, _ in seen}) == 1 and seen[0][0] == m["message_id"]
    assert all(sig.startswith("t=") and ",v1=" in sig for _, sig in seen)
