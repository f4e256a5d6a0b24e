"""Delivery against real servers: the SMTP sink and aiosmtpd on loopback for email, a uvicorn app for webhooks.

Every message arrives once with the headers a receiver needs (de-duplication, one-click
unsubscribe); an SMTP 4xx asks for a retry and a 5xx fails; a webhook is signed and keyed by
the message id, and the provider's status decides between sent, retry and failed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, Request, Response

from campaigns import sink
from campaigns.delivery import unsubscribe
from campaigns.delivery.channels import CallTaskSender, Outgoing, SmsSender, SmtpSender, WebhookSender
from campaigns.delivery.config import DeliverySettings
from campaigns.delivery.http import verify_signature
from campaigns.delivery.templates import Templates, message_context
from campaigns.domain.machine import coupon_code, enrolment_id, message_id
from campaigns.domain.sequences import STANDARD
from cartera_common.events.changes import CustomerSnapshot

SECRET = "hook-secret"
NOW = datetime(2025, 9, 1, tzinfo=UTC)
TEMPLATES = Templates()
STEP = STANDARD.steps[3]  # 10 % off: a coupon to find in the message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def outgoing(i: int, *, recipient: str | None = None, name: str = "Ana María López") -> Outgoing:
    customer_id = f"c-{i}"
    mid = message_id(enrolment_id("ws-1", STANDARD.id, customer_id, 0), 3)
    customer = CustomerSnapshot(name=name, status="lapsed", order_count=14, favourite_category="flowers")
    url = unsubscribe.link("http://127.0.0.1:8004", unsubscribe.sign("unsub", "ws-1", customer_id))
    coupon = coupon_code(mid)
    context = message_context(
        customer, campaign_name=STANDARD.name, step=STEP, coupon=coupon, unsubscribe_url=url, now=NOW
    )
    return Outgoing(
        message_id=mid,
        workspace_id="ws-1",
        customer_id=customer_id,
        campaign_id=STANDARD.id,
        step=3,
        variant="default",
        channel="email",
        recipient=recipient if recipient is not None else f"customer{i}@example.com",
        rendered=TEMPLATES.render(STEP.template_id, context),
        coupon=coupon,
        call_to_action=STEP.call_to_action,
        unsubscribe_url=url,
        customer=customer,
    )


def smtp_settings(port: int) -> DeliverySettings:
    return DeliverySettings(
        campaigns_smtp_host="127.0.0.1",
        campaigns_smtp_port=port,
        campaigns_send_timeout_s=5,
        campaigns_smtp_connections=3,
    )


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


# --- email through the sink -------------------------------------------------------------------


@dataclass
class Sink:
    directory: Path
    port: int
    stop: asyncio.Event
    task: asyncio.Task[None]


async def start_sink(directory: Path, port: int) -> Sink:
    stop = asyncio.Event()
    task = asyncio.create_task(sink.serve(directory, "127.0.0.1", port, stop))
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return Sink(directory, port, stop, task)
    raise RuntimeError("the sink did not start")


async def stop_sink(s: Sink) -> None:
    s.stop.set()
    await s.task


@pytest.fixture
async def mail_sink(tmp_path: Path) -> AsyncIterator[Sink]:
    s = await start_sink(tmp_path / "mail", free_port())
    yield s
    await stop_sink(s)


async def test_a_batch_arrives_once_each_with_the_headers_a_receiver_needs(mail_sink: Sink) -> None:
    batch = [outgoing(i) for i in range(50)]
    sender = SmtpSender(smtp_settings(mail_sink.port))
    try:
        deliveries = await sender.send(batch)
    finally:
        await sender.close()

    assert [d.status for d in deliveries] == ["sent"] * 50
    files = sorted(mail_sink.directory.glob("*.eml"))
    assert len(files) == 50 and not list(mail_sink.directory.glob(".*"))
    received = {m["X-Cartera-Message-Id"]: m for m in (parse(f.read_bytes()) for f in files)}
    assert Counter(str(m["X-Cartera-Message-Id"]) for m in received.values()) == Counter(o.message_id for o in batch)
    for out, delivery in zip(batch, deliveries, strict=True):
        m = received[out.message_id]
        assert m["Message-ID"] == f"<{out.message_id}@cartera.local>"
        assert m["From"] == "Cartera <winback@cartera.local>" and m["To"] == out.recipient
        assert m["Subject"] == out.rendered.subject == "10 % off your next order"
        assert m["List-Unsubscribe"] == f"<{out.unsubscribe_url}>"
        assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert m.get_content_type() == "multipart/alternative"
        text = m.get_body(preferencelist=("plain",))
        html = m.get_body(preferencelist=("html",))
        assert text is not None and html is not None
        assert text.get_content().replace("\r\n", "\n") == out.rendered.text
        assert out.unsubscribe_url in text.get_content() and f'href="{out.unsubscribe_url}"' in html.get_content()
        assert out.coupon is not None and out.coupon in text.get_content() and out.coupon in html.get_content()
        assert delivery.provider_id is not None and out.message_id in delivery.provider_id  # the sink's mail id


async def test_non_ascii_subjects_and_leading_dots_survive_the_trip(mail_sink: Sink) -> None:
    out = outgoing(1, name="Zoë Ñúñez")
    out = replace(out, rendered=replace(out.rendered, subject="Zoë, ¡vuelve! 10 % off", text=".\n..two dots\nend\n"))
    sender = SmtpSender(smtp_settings(mail_sink.port))
    [delivery] = await sender.send([out])
    await sender.close()
    assert delivery.status == "sent"
    [file] = mail_sink.directory.glob("*.eml")
    m = parse(file.read_bytes())
    assert m["Subject"] == "Zoë, ¡vuelve! 10 % off"
    text = m.get_body(preferencelist=("plain",))
    assert text is not None and text.get_content().replace("\r\n", "\n") == ".\n..two dots\nend\n"


async def test_the_sink_lists_newest_first_and_reads_one_mail(mail_sink: Sink) -> None:
    batch = [outgoing(i) for i in range(5)]
    sender = SmtpSender(smtp_settings(mail_sink.port))
    for out in batch:  # one at a time, so arrival order is batch order
        assert (await sender.send([out]))[0].status == "sent"
    await sender.close()

    listed = sink.list_mail(mail_sink.directory)
    assert [m.message_id for m in listed] == [f"<{o.message_id}@cartera.local>" for o in reversed(batch)]
    assert [m.received_at for m in listed] == sorted((m.received_at for m in listed), reverse=True)
    assert listed[0].to == batch[-1].recipient and listed[0].subject == batch[-1].rendered.subject
    assert listed[0].mail_from == "Cartera <winback@cartera.local>"
    assert [m.id for m in sink.list_mail(mail_sink.directory, limit=2, offset=1)] == [m.id for m in listed[1:3]]

    found = sink.read_mail(mail_sink.directory, listed[-1].id)
    assert found is not None
    summary, body = found
    assert summary == listed[-1]
    assert batch[0].coupon is not None and batch[0].coupon in body and batch[0].unsubscribe_url in body


@pytest.mark.parametrize("mail_id", ["../etc/passwd", "/etc/passwd", "..", "", "00000000000000000000-000000-nope"])
async def test_the_sink_refuses_paths_and_unknown_ids(mail_sink: Sink, mail_id: str) -> None:
    assert sink.read_mail(mail_sink.directory, mail_id) is None


def test_listing_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert sink.list_mail(tmp_path / "nowhere") == []


async def test_the_pool_reconnects_after_the_server_restarts(tmp_path: Path) -> None:
    port = free_port()
    first = await start_sink(tmp_path / "mail", port)
    sender = SmtpSender(smtp_settings(port))
    assert {d.status for d in await sender.send([outgoing(i) for i in range(6)])} == {"sent"}
    await stop_sink(first)  # the kept-open connections are dropped
    second = await start_sink(tmp_path / "mail", port)
    try:
        assert {d.status for d in await sender.send([outgoing(i) for i in range(6, 12)])} == {"sent"}
    finally:
        await sender.close()
        await stop_sink(second)
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 12


async def test_no_server_means_retry_later() -> None:
    sender = SmtpSender(smtp_settings(free_port()))
    deliveries = await sender.send([outgoing(i) for i in range(4)])
    assert {d.status for d in deliveries} == {"retry"}
    assert all("cannot connect" in (d.error or "") or "no SMTP connection" in (d.error or "") for d in deliveries)


# --- SMTP refusals ----------------------------------------------------------------------------


@dataclass
class Picky:
    """Accepts mail, except: busy@ (451 at RCPT), nobody@ (550 at RCPT), full@ (452 at DATA), spam@ (554 at DATA),
    and mute@, whose content it takes and then hangs up on without an answer."""

    accepted: list[str] = field(default_factory=list)

    async def handle_RCPT(  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("busy@"):
            return "451 4.3.2 Try again later"
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if envelope.rcpt_tos[0].startswith("full@"):
            return "452 4.3.1 Insufficient system storage"
        if envelope.rcpt_tos[0].startswith("spam@"):
            return "554 5.7.1 Message rejected"
        if envelope.rcpt_tos[0].startswith("mute@"):
            server.transport.abort()  # type: ignore[union-attr]
            return "250 OK"  # never reaches the client
        self.accepted.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def picky() -> Iterator[tuple[Picky, int]]:
    handler = Picky()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


async def test_a_4xx_asks_for_a_retry_and_a_5xx_fails_and_the_connection_carries_on(picky: tuple[Picky, int]) -> None:
    handler, port = picky
    recipients = [
        "busy@x.example",
        "nobody@x.example",
        "full@x.example",
        "spam@x.example",
        "mute@x.example",
        "ok@x.example",
    ]
    batch = [outgoing(i, recipient=r) for i, r in enumerate(recipients)]
    sender = SmtpSender(smtp_settings(port).model_copy(update={"campaigns_smtp_connections": 1}))
    deliveries = await sender.send(batch)
    await sender.close()
    # mute@ may have been delivered: it is in doubt, which the dispatcher never resends for email.
    assert [d.status for d in deliveries] == ["retry", "failed", "retry", "failed", "in_doubt", "sent"]
    assert deliveries[0].error is not None and deliveries[0].error.startswith("SMTP 451")
    assert deliveries[1].error is not None and deliveries[1].error.startswith("SMTP 550")
    assert handler.accepted == ["ok@x.example"]  # the refusals and the hang-up did not stop the rest


# --- webhooks, call tasks, SMS ----------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


def receiver_app(received: Receiver) -> FastAPI:
    """Answers by the customer: c-503 gets 503, c-400 gets 400, c-429 gets 429; everyone else 200 with an id."""
    app = FastAPI()

    @app.post("/{path}")
    async def take(path: str, request: Request) -> Response:
        body = await request.body()
        received.requests.append((path, dict(request.headers), body))
        payload = json.loads(body)
        customer = str(payload.get("customer_id") or payload.get("to") or "")
        for code in (503, 400, 429):
            if customer.endswith(str(code)):
                return Response(status_code=code, content=f"nope {code}")
        return Response(content=json.dumps({"id": f"prov-{len(received.requests)}"}), media_type="application/json")

    return app


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    received = Receiver(url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(receiver_app(received), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield received
    server.should_exit = True
    await task


def channel(out: Outgoing, name: Any, customer_id: str, recipient: str | None = "+34600111222") -> Outgoing:
    return replace(out, channel=name, customer_id=customer_id, recipient=recipient)


async def test_a_webhook_is_signed_and_keyed_and_its_status_decides(receiver: Receiver) -> None:
    batch = [channel(outgoing(i), "webhook", f"c-{code}") for i, code in enumerate((200, 503, 400, 429))]
    async with httpx.AsyncClient() as client:
        deliveries = await WebhookSender(f"{receiver.url}/hook", SECRET, client).send(batch)
    assert [d.status for d in deliveries] == ["sent", "retry", "failed", "retry"]
    assert deliveries[0].provider_id is not None and deliveries[0].provider_id.startswith("prov-")
    assert deliveries[2].error == "HTTP 400: nope 400"
    assert len(receiver.requests) == 4
    by_key = {headers["idempotency-key"]: (headers, body) for _, headers, body in receiver.requests}
    for out in batch:
        headers, body = by_key[out.message_id]
        assert verify_signature(SECRET, headers["x-cartera-signature"], body, now=time.time())
        assert not verify_signature("wrong", headers["x-cartera-signature"], body, now=time.time())
        payload = json.loads(body)
        assert payload["message_id"] == out.message_id and payload["coupon"] == out.coupon
        assert payload["text"] == out.rendered.text and payload["unsubscribe_url"] == out.unsubscribe_url


async def test_an_unreachable_webhook_means_retry_later() -> None:
    async with httpx.AsyncClient() as client:
        sender = WebhookSender(f"http://127.0.0.1:{free_port()}/hook", SECRET, client, timeout_s=2)
        [delivery] = await sender.send([channel(outgoing(1), "webhook", "c-1")])
    assert delivery.status == "retry" and delivery.error is not None and "Connect" in delivery.error


async def test_a_call_task_tells_the_crm_who_to_call_and_why(receiver: Receiver) -> None:
    out = channel(outgoing(1), "call_task", "c-1", recipient=None)
    assert out.customer is not None
    out = replace(out, customer=out.customer.model_copy(update={"phone": "+34 600", "leave_reasons": ["complaint:x"]}))
    async with httpx.AsyncClient() as client:
        [delivery] = await CallTaskSender(f"{receiver.url}/crm", SECRET, client).send([out])
    assert delivery.status == "sent"
    [(path, headers, body)] = receiver.requests
    task = json.loads(body)
    assert path == "crm" and headers["idempotency-key"] == out.message_id
    assert verify_signature(SECRET, headers["x-cartera-signature"], body, now=time.time())
    assert task["type"] == "call_task" and task["task_id"] == out.message_id
    assert task["phone"] == "+34 600" and task["name"] == "Ana María López" and task["leave_reasons"] == ["complaint:x"]
    assert task["customer"]["order_count"] == 14 and task["brief"] == out.rendered.text
    assert task["call_to_action"] == out.call_to_action


async def test_an_sms_goes_to_the_provider_with_its_token_and_needs_a_number(receiver: Receiver) -> None:
    batch = [
        channel(outgoing(1), "sms", "c-1", "+34600111222"),
        channel(outgoing(2), "sms", "c-2", None),
        channel(outgoing(3), "sms", "c-3", "+34600111503"),
    ]
    async with httpx.AsyncClient() as client:
        deliveries = await SmsSender(f"{receiver.url}/sms", "tok", client).send(batch)
    assert [(d.status, d.error) for d in deliveries[:2]] == [("sent", None), ("failed", "no phone number")]
    assert deliveries[2].status == "retry"
    assert len(receiver.requests) == 2  # nothing was posted for the customer without a number
    path, headers, body = receiver.requests[0]
    assert path == "sms" and headers["authorization"] == "Bearer tok"
    assert json.loads(body) == {
        "to": "+34600111222",
        "body": batch[0].rendered.text,
        "idempotency_key": batch[0].message_id,
    }


async def test_the_sink_speaks_plain_smtp_even_to_a_hasty_client(mail_sink: Sink) -> None:
    """Commands sent right behind a message's final dot, and an empty message, are still handled."""
    reader, writer = await asyncio.open_connection("127.0.0.1", mail_sink.port)

    async def reply() -> bytes:
        line = await reader.readline()
        while line[3:4] == b"-":  # a multi-line reply
            line = await reader.readline()
        return line[:3]

    assert await reply() == b"220"
    replies = []
    for command in (b"EHLO test", b"MAIL FROM:<a@x.example>", b"RCPT TO:<b@x.example>", b"DATA"):
        writer.write(command + b"\r\n")
        replies.append(await reply())
    writer.write(b"Subject: hasty\r\n\r\n..dot\r\n.\r\nMAIL FROM:<a@x.example>\r\n")
    replies += [await reply(), await reply()]
    for command in (b"RCPT TO:<b@x.example>", b"DATA", b".", b"QUIT"):
        writer.write(command + b"\r\n")
        replies.append(await reply())
    writer.close()
    assert replies == [b"250", b"250", b"250", b"354", b"250", b"250", b"250", b"354", b"250", b"221"]
    contents = sorted(f.read_bytes() for f in mail_sink.directory.glob("*.eml"))
    assert contents == [b"", b"Subject: hasty\r\n\r\n.dot\r\n"]


async def test_the_sink_refuses_a_message_over_its_size_limit_and_carries_on(mail_sink: Sink) -> None:
    """A client that ignores the advertised SIZE gets 552 after its data, and the session goes on."""
    reader, writer = await asyncio.open_connection("127.0.0.1", mail_sink.port)

    async def say(command: bytes) -> bytes:
        writer.write(command + b"\r\n")
        line = await reader.readline()
        while line[3:4] == b"-":
            line = await reader.readline()
        return line[:3]

    assert (await reader.readline())[:3] == b"220"
    assert [await say(c) for c in (b"EHLO t", b"MAIL FROM:<a@x.example>", b"RCPT TO:<b@x.example>")] == [b"250"] * 3
    assert await say(b"DATA") == b"354"
    writer.write((b"x" * 998 + b"\r\n") * 11_000)
    assert await say(b".") == b"552"
    assert [await say(c) for c in (b"MAIL FROM:<a@x.example>", b"RCPT TO:<b@x.example>", b"DATA")] == [
        b"250",
        b"250",
        b"354",
    ]
    assert await say(b"Subject: small\r\n\r\nhello\r\n.") == b"250"
    assert await say(b"QUIT") == b"221"
    writer.close()
    assert [f.read_bytes() for f in mail_sink.directory.glob("*.eml")] == [b"Subject: small\r\n\r\nhello\r\n"]
