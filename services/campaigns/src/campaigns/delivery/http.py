"""Webhook, CRM call task and SMS: one JSON POST per message, keyed by the message id so a retry is no duplicate.

Webhook and CRM requests are signed like Stripe's: `X-Cartera-Signature: t=<unix>,v1=<hex>`, the
HMAC-SHA256 of `"<t>.<body>"`, so the receiver can check who sent it and reject replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import httpx

from campaigns.delivery.outgoing import Delivery, Outgoing, failed, retry, sent

# The provider may get better: time-outs, rate limits and its own errors are worth another try.
RETRYABLE = frozenset({408, 425, 429})


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, *, now: float, tolerance_s: float = 300) -> bool:
    """What a receiver checks: a v1 MAC over this body, made within `tolerance_s` of `now`."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, timestamp, body).rpartition("v1=")[2]
    return abs(now - timestamp) <= tolerance_s and hmac.compare_digest(fields.get("v1", ""), expected)


def _provider_id(response: httpx.Response) -> str | None:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    found = body.get("id") if isinstance(body, dict) else None
    return str(found)[:200] if found is not None else None


def by_status(response: httpx.Response) -> Delivery:
    """2xx sent; 408, 425, 429 and 5xx retry; any other answer is a refusal that will not change."""
    code = response.status_code
    if 200 <= code < 300:
        return sent(_provider_id(response))
    reason = f"HTTP {code}: {response.text[:200]}".rstrip(": ")
    return retry(reason) if code in RETRYABLE or code >= 500 else failed(reason)


class _Poster:
    """POSTs one JSON body per message, a bounded number at a time over the shared client's pool."""

    def __init__(self, url: str, client: httpx.AsyncClient, *, timeout_s: float, concurrency: int) -> None:
        self.url = url
        self._client = client
        self._timeout = timeout_s
        self._slots = asyncio.Semaphore(concurrency)

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        async with self._slots:
            try:
                response = await self._client.post(self.url, content=body, headers=headers, timeout=self._timeout)
            except httpx.HTTPError as e:  # refused, reset, timed out: the provider may be back later
                return retry(f"{type(e).__name__}: {e}".rstrip(": "))
        return by_status(response)

    async def each(self, batch: Sequence[Outgoing], one: Callable[[Outgoing], Awaitable[Delivery]]) -> list[Delivery]:
        return list(await asyncio.gather(*(one(out) for out in batch)))


def _json(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()


class WebhookSender:
    """Hands each message to the business's own system: a signed JSON POST with an Idempotency-Key."""

    def __init__(
        self, url: str, secret: str, client: httpx.AsyncClient, *, timeout_s: float = 10, concurrency: int = 32
    ) -> None:
        self._secret = secret
        self._poster = _Poster(url, client, timeout_s=timeout_s, concurrency=concurrency)

    def payload(self, out: Outgoing) -> dict[str, object]:
        return {
            "type": "winback_message",
            "message_id": out.message_id,
            "workspace_id": out.workspace_id,
            "customer_id": out.customer_id,
            "campaign_id": out.campaign_id,
            "step": out.step,
            "variant": out.variant,
            "channel": out.channel,
            "recipient": out.recipient,
            "subject": out.rendered.subject,
            "text": out.rendered.text,
            "html": out.rendered.html,
            "coupon": out.coupon,
            "call_to_action": out.call_to_action,
            "unsubscribe_url": out.unsubscribe_url,
            "attempt": out.attempt,
        }

    async def _one(self, out: Outgoing) -> Delivery:
        body = _json(self.payload(out))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": out.message_id,
            "X-Cartera-Signature": signature(self._secret, int(time.time()), body),
            **out.trace_headers(),
        }
        return await self._poster.post(body, headers)

    async def send(self, batch: Sequence[Outgoing]) -> list[Delivery]:
        return await self._poster.each(batch, self._one)

    async def close(self) -> None:
        return None  # the client belongs to the caller


class CallTaskSender(WebhookSender):
    """Asks the CRM for a call: who to call, why they may have left, the relationship, and the goal."""

    def payload(self, out: Outgoing) -> dict[str, object]:
        customer = out.customer
        facts = customer.model_dump(mode="json", exclude={"consent"}) if customer is not None else None
        return {
            "type": "call_task",
            "task_id": out.message_id,
            "workspace_id": out.workspace_id,
            "customer_id": out.customer_id,
            "campaign_id": out.campaign_id,
            "step": out.step,
            "variant": out.variant,
            "phone": out.recipient or (customer.phone if customer is not None else None),
            "name": customer.name if customer is not None else None,
            "leave_reasons": list(customer.leave_reasons) if customer is not None else [],
            "customer": facts,
            "subject": out.rendered.subject,
            "brief": out.rendered.text,
            "call_to_action": out.call_to_action,
            "attempt": out.attempt,
        }


class SmsSender:
    """A generic SMS provider adapter: POST {to, body, idempotency_key} with a bearer token."""

    def __init__(
        self,
        url: str,
        token: str | None,
        client: httpx.AsyncClient,
        *,
        timeout_s: float = 10,
        concurrency: int = 32,
    ) -> None:
        self._token = token
        self._poster = _Poster(url, client, timeout_s=timeout_s, concurrency=concurrency)

    async def _one(self, out: Outgoing) -> Delivery:
        if not out.recipient or not out.recipient.strip():
            return failed("no phone number")
        body = _json({"to": out.recipient.strip(), "body": out.rendered.text, "idempotency_key": out.message_id})
        headers = {"Content-Type": "application/json", "Idempotency-Key": out.message_id, **out.trace_headers()}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return await self._poster.post(body, headers)

    async def send(self, batch: Sequence[Outgoing]) -> list[Delivery]:
        return await self._poster.each(batch, self._one)

    async def close(self) -> None:
        return None
