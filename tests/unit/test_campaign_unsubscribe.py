"""Links and signatures: unsubscribe tokens survive only untouched, webhook signatures check out, retries back off.

Also how a deployment's settings become senders: an unconfigured channel fails, never "sends".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.delivery import unsubscribe
from campaigns.delivery.channels import (
    MAX_ATTEMPTS,
    Outgoing,
    SmtpSender,
    Unconfigured,
    WebhookSender,
    backoff,
    senders_from,
)
from campaigns.delivery.config import DeliverySettings
from campaigns.delivery.http import signature, verify_signature
from campaigns.delivery.templates import Rendered
from campaigns.domain.model import Channel

SECRET = "s3cret"


def test_a_signed_token_names_its_workspace_and_customer() -> None:
    token = unsubscribe.sign(SECRET, "ws-1", "cust-42")
    assert token.startswith("v1.")
    assert unsubscribe.verify(SECRET, token) == ("ws-1", "cust-42")


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_any_ids_round_trip_in_a_url_safe_token(workspace_id: str, customer_id: str) -> None:
    token = unsubscribe.sign(SECRET, workspace_id, customer_id)
    assert all(c.isalnum() or c in "-_." for c in token)
    assert unsubscribe.verify(SECRET, token) == (workspace_id, customer_id)


def test_a_token_made_with_another_secret_is_refused() -> None:
    assert unsubscribe.verify(SECRET, unsubscribe.sign("other", "ws-1", "cust-42")) is None


def test_changing_any_character_of_a_token_invalidates_it() -> None:
    token = unsubscribe.sign(SECRET, "ws-1", "cust-42")
    for i, c in enumerate(token):
        for replacement in {"A", "b", "_", "."} - {c}:
            tampered = token[:i] + replacement + token[i + 1 :]
            assert unsubscribe.verify(SECRET, tampered) is None, tampered


def test_another_customers_ids_with_the_old_mac_are_refused() -> None:
    version, _, _, mac = unsubscribe.sign(SECRET, "ws-1", "cust-42").split(".")
    forged = unsubscribe.sign(SECRET, "ws-1", "cust-43").split(".")
    assert unsubscribe.verify(SECRET, ".".join((version, forged[1], forged[2], mac))) is None


@pytest.mark.parametrize("garbage", ["", "v1", "v1...", "v2.a.b.c", "v1.%%%.b.c", "v1.YQ.Yg.", "not a token at all"])
def test_garbage_is_refused_without_an_error(garbage: str) -> None:
    assert unsubscribe.verify(SECRET, garbage) is None


def test_the_link_is_the_public_unsubscribe_path() -> None:
    assert unsubscribe.link("https://win.example.com/", "v1.a.b.c") == "https://win.example.com/unsubscribe/v1.a.b.c"


def test_a_webhook_signature_verifies_only_for_its_body_secret_and_time() -> None:
    body = b'{"message_id":"m-1"}'
    header = signature(SECRET, 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature(SECRET, header, body, now=1_700_000_100)
    assert not verify_signature(SECRET, header, body + b" ", now=1_700_000_100)
    assert not verify_signature("other", header, body, now=1_700_000_100)
    assert not verify_signature(SECRET, header, body, now=1_700_001_000)  # a replay long after
    assert not verify_signature(SECRET, "v1=abc", body, now=1_700_000_000)


def test_backoff_doubles_from_thirty_seconds_up_to_an_hour() -> None:
    waits = [backoff(a) for a in range(1, MAX_ATTEMPTS + 1)]
    assert waits[:4] == [timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert waits == sorted(waits)
    assert max(waits) == timedelta(hours=1)
    assert backoff(1000) == timedelta(hours=1)
    assert sum(waits, timedelta()) < timedelta(hours=3)  # a message is given up within hours, not days
    with pytest.raises(ValueError):
        backoff(0)


def _outgoing(channel: Channel = "email") -> Outgoing:
    rendered = Rendered("Hi", "Hello\n", "<p>Hello</p>")
    return Outgoing("m-1", "ws", "c", "camp", 0, "default", channel, "a@example.com", rendered, None, "Come back", "u")


async def test_an_unconfigured_channel_fails_every_message_with_the_reason() -> None:
    deliveries = await Unconfigured("sms").send([_outgoing("sms"), _outgoing("sms")])
    assert [(d.status, d.error) for d in deliveries] == [("failed", "no sms provider configured")] * 2


async def test_settings_without_destinations_give_only_unconfigured_senders() -> None:
    async with httpx.AsyncClient() as client:
        senders = senders_from(DeliverySettings(), client)
        assert set(senders) == {"email", "webhook", "sms", "call_task"}
        assert all(isinstance(s, Unconfigured) for s in senders.values())
        for channel, sender in senders.items():
            [delivery] = await sender.send([_outgoing(channel)])
            assert delivery.status == "failed"
            assert delivery.error == f"no {channel} provider configured"


async def test_configured_destinations_get_their_senders() -> None:
    settings = DeliverySettings(campaigns_smtp_host="127.0.0.1", campaigns_webhook_url="http://127.0.0.1:9/hook")
    async with httpx.AsyncClient() as client:
        senders = senders_from(settings, client)
        assert isinstance(senders["email"], SmtpSender)
        assert isinstance(senders["webhook"], WebhookSender)
        assert isinstance(senders["sms"], Unconfigured) and isinstance(senders["call_task"], Unconfigured)
        await senders["email"].close()


async def test_an_email_without_a_usable_address_fails_before_any_connection() -> None:
    sender = SmtpSender(DeliverySettings(campaigns_smtp_host="127.0.0.1", campaigns_smtp_port=9))
    missing = replace(_outgoing(), recipient=None)
    injected = replace(_outgoing(), recipient="x@example.com\r\nBcc: everyone@example.com")
    deliveries = await sender.send([missing, injected])
    assert (deliveries[0].status, deliveries[0].error) == ("failed", "no email address")
    assert deliveries[1].status == "failed" and "invalid email address" in (deliveries[1].error or "")
