"""A message ready to go, what a provider made of it, and the contract every channel's sender keeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol

from campaigns.delivery.templates import Rendered
from campaigns.domain.model import Channel
from cartera_common.events.changes import CustomerSnapshot

MAX_ATTEMPTS = 8
_FIRST_RETRY = timedelta(seconds=30)
_LONGEST_WAIT = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One rendered message for one customer; `message_id` is the idempotency key on every channel."""

    message_id: str
    workspace_id: str
    customer_id: str
    campaign_id: str
    step: int
    variant: str
    channel: Channel
    recipient: str | None  # the email address or phone number; None when the customer has none
    rendered: Rendered
    coupon: str | None
    call_to_action: str
    unsubscribe_url: str
    attempt: int = 1
    # The facts a call task hands the salesperson (leave reasons, relationship); optional elsewhere.
    customer: CustomerSnapshot | None = None
    # The trace of the lapse that started the sequence, handed on so the provider's logs join it.
    traceparent: str | None = None

    def trace_headers(self) -> dict[str, str]:
        return {"traceparent": self.traceparent} if self.traceparent else {}


@dataclass(frozen=True, slots=True)
class Delivery:
    """sent: the provider took it. retry: ask again after `backoff`. failed: it will never go.
    in_doubt: the connection broke after the message itself went out, so it may have arrived; a
    channel without an idempotency key must not send it again."""

    status: Literal["sent", "retry", "failed", "in_doubt"]
    provider_id: str | None = None
    error: str | None = None


def sent(provider_id: str | None = None) -> Delivery:
    return Delivery("sent", provider_id=provider_id)


def retry(error: str) -> Delivery:
    return Delivery("retry", error=error[:500])


def failed(error: str) -> Delivery:
    return Delivery("failed", error=error[:500])


def in_doubt(error: str) -> Delivery:
    return Delivery("in_doubt", error=error[:500])


class Sender(Protocol):
    async def send(self, batch: Sequence[Outgoing]) -> list[Delivery]:
        """One Delivery per message, in the batch's order; never raises for a message's own failure."""
        ...

    async def close(self) -> None: ...


class Unconfigured:
    """The sender of a channel with nowhere to go: every message fails, loudly, instead of vanishing."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    async def send(self, batch: Sequence[Outgoing]) -> list[Delivery]:
        return [failed(f"no {self.channel} provider configured") for _ in batch]

    async def close(self) -> None:
        return None


def backoff(attempt: int) -> timedelta:
    """How long to wait after failed attempt `attempt` (1-based): 30 s, 1 min, 2 min, … at most an hour."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    return min(_FIRST_RETRY * (1 << min(attempt - 1, 16)), _LONGEST_WAIT)
