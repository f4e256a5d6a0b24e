"""Delivery: sends what the scheduler queued, never the same message twice.

    queued ──claim──▶ sending ──provider──▶ sent
       ▲                 │ ├──────────────▶ retrying (idempotent channels, with backoff) ─┐
       └─────────────────┼─┘                failed   (refused, or out of attempts)        │
                         │                                                                 │
                         └─ crash in between ─▶ webhook, SMS, call task: retrying with the same
                                                Idempotency-Key; email: in_doubt, reported, never resent

A claim commits the `sending` state before the provider is called, so after a crash the row says
which messages may have gone. Replicas claim side by side with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from campaigns import customers
from campaigns.delivery.channels import MAX_ATTEMPTS, Delivery, Outgoing, Sender, backoff
from campaigns.delivery.templates import Rendered
from campaigns.domain.model import Channel
from campaigns.messages import Links
from cartera_common.db import json_rows
from cartera_common.errors import is_transient
from cartera_common.events.changes import MESSAGE_SENT, MessageSent
from cartera_common.events.envelope import derived_envelope
from cartera_common.metrics import MESSAGES
from cartera_common.outbox import OutMessage, emit
from cartera_common.topics import CAMPAIGN_OUTCOMES

log = logging.getLogger(__name__)

_STATES = {"sent": "sent", "failed": "failed", "in_doubt": "in_doubt"}

# Channels whose provider takes an idempotency key: a message in doubt may safely be offered again.
IDEMPOTENT = frozenset({"webhook", "sms", "call_task"})

_CLAIM = text(
    """
    UPDATE message m SET state = 'sending', sending_at = :wall, attempts = m.attempts + 1
    FROM (SELECT message_id FROM message WHERE state IN ('queued', 'retrying') AND next_attempt_at <= :wall
          ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED) AS due
    WHERE m.message_id = due.message_id
    RETURNING m.message_id, m.workspace_id, m.customer_id, m.campaign_id, m.step, m.variant, m.channel, m.recipient,
              m.subject, m.body, m.html, m.coupon, m.call_to_action, m.attempts, m.created_at, m.traceparent
    """
)

_SETTLE = text(
    """
    UPDATE message m SET state = t.state, sent_at = t.sent_at, provider_id = t.provider_id, error = t.error,
                         next_attempt_at = COALESCE(t.next_attempt_at, m.next_attempt_at)
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(message_id text, state text, sent_at timestamptz,
                                                       provider_id text, error text, next_attempt_at timestamptz)
    WHERE m.message_id = t.message_id AND m.state = 'sending'
    """
)

_IN_DOUBT = text(
    """
    UPDATE message SET
        state = CASE WHEN channel = ANY(CAST(:idempotent AS text[])) AND attempts < :max_attempts
                     THEN 'retrying' ELSE 'in_doubt' END,
        next_attempt_at = :wall,
        error = CASE WHEN channel = ANY(CAST(:idempotent AS text[])) AND attempts < :max_attempts
                     THEN 'interrupted while sending; offered again with the same idempotency key'
                     ELSE 'interrupted while sending; it may have gone, so it is not sent again' END
    WHERE state = 'sending' AND sending_at < :stale
    RETURNING message_id, state
    """
)


class Dispatcher:
    """A loop beside the consumers: claims a batch, sends it, settles it; woken when messages are queued."""

    def __init__(
        self,
        engine: AsyncEngine,
        senders: Mapping[Channel, Sender],
        links: Links,
        *,
        batch: int = 500,
        lease_s: float = 60.0,
        in_flight: int = 2,
    ) -> None:
        self.engine, self.senders, self.links = engine, senders, links
        self.batch, self.lease, self.in_flight = batch, timedelta(seconds=lease_s), in_flight
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._recovered_at = datetime.min.replace(tzinfo=UTC)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        await asyncio.gather(*(self._rounds() for _ in range(self.in_flight)))
        for sender in self.senders.values():
            await sender.close()

    async def _rounds(self) -> None:
        """One of `in_flight` loops: while one waits on the provider, another claims or settles."""
        while not self._stopping.is_set():
            try:
                await self.recover_if_due()
                sent = await self.dispatch_once()
            except Exception as exc:
                log.warning("dispatcher: %r", exc, exc_info=not is_transient(exc))
                sent = 0
            if sent < self.batch and not self._stopping.is_set():
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                except TimeoutError:
                    pass
                self._wake.clear()

    async def drain(self) -> int:
        """Sends everything that is due now, `in_flight` rounds at a time; returns how many were claimed."""
        total = 0

        async def rounds() -> None:
            nonlocal total
            while n := await self.dispatch_once():
                total += n

        await asyncio.gather(*(rounds() for _ in range(self.in_flight)))
        return total

    async def recover_if_due(self) -> None:
        wall = datetime.now(UTC)
        if wall - self._recovered_at >= min(self.lease, timedelta(seconds=30)):  # one round does it
            self._recovered_at = wall
            await self.recover(wall)

    async def recover(self, wall: datetime) -> dict[str, int]:
        """Messages left `sending` past the lease were cut off by a crash: settle them without a blind resend."""
        params = {
            "wall": wall,
            "stale": wall - self.lease,
            "idempotent": sorted(IDEMPOTENT),
            "max_attempts": MAX_ATTEMPTS,
        }
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_IN_DOUBT, params)).all()
        counts: dict[str, int] = defaultdict(int)
        for _, state in rows:
            counts[state] += 1
        if counts:
            log.warning("messages interrupted while sending: %s", dict(counts))
        return dict(counts)

    async def dispatch_once(self) -> int:
        """Sends one claimed batch; returns how many messages it claimed."""
        wall = datetime.now(UTC)
        async with self.engine.begin() as conn:
            claimed = [dict(r) for r in (await conn.execute(_CLAIM, {"wall": wall, "limit": self.batch})).mappings()]
        if not claimed:
            return 0
        tasks = [(r["workspace_id"], r["customer_id"]) for r in claimed if r["channel"] == "call_task"]
        if tasks:  # a call task hands the salesperson who to call and why
            async with self.engine.connect() as conn:
                found = await customers.load(conn, tasks)
            for r in claimed:
                known = found.get((r["workspace_id"], r["customer_id"]))
                r["customer"] = known.snapshot if known else None
        by_channel: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in claimed:
            by_channel[row["channel"]].append(row)
        results = await asyncio.gather(*(self._send(ch, rows) for ch, rows in by_channel.items()))
        settled = [s for part in results for s in part]
        await self._settle(settled)
        outcome = Counter(d.status for _, d in settled)
        log.info("delivered %d messages: %s", len(claimed), ", ".join(f"{n} {k}" for k, n in sorted(outcome.items())))
        return len(claimed)

    async def _send(self, channel: str, rows: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], Delivery]]:
        outgoing = [self._outgoing(r) for r in rows]
        sender = self.senders.get(channel)  # type: ignore[call-overload]
        if sender is None:
            return [(r, Delivery("failed", error=f"no sender for channel {channel}")) for r in rows]
        try:
            deliveries = await sender.send(outgoing)
        except Exception as exc:  # a sender bug must not leave the batch `sending` until the lease runs out
            log.exception("%s sender failed", channel)
            if channel in IDEMPOTENT:
                return [(r, Delivery("retry", error=repr(exc))) for r in rows]
            return [
                ({**r, "in_doubt": True}, Delivery("failed", error=f"sender failed mid-batch: {exc!r}")) for r in rows
            ]
        return list(zip(rows, deliveries, strict=True))

    def _outgoing(self, r: Mapping[str, Any]) -> Outgoing:
        return Outgoing(
            message_id=r["message_id"],
            workspace_id=r["workspace_id"],
            customer_id=r["customer_id"],
            campaign_id=r["campaign_id"],
            step=r["step"],
            variant=r["variant"],
            channel=r["channel"],
            recipient=r["recipient"],
            rendered=Rendered(r["subject"] or "", r["body"] or "", r["html"] or ""),
            coupon=r["coupon"],
            call_to_action=r["call_to_action"],
            unsubscribe_url=self.links.unsubscribe(r["workspace_id"], r["customer_id"]),
            attempt=r["attempts"],
            customer=r.get("customer"),
            traceparent=r["traceparent"],
        )

    async def _settle(self, settled: Sequence[tuple[dict[str, Any], Delivery]]) -> None:
        wall = datetime.now(UTC)
        rows, outbox = [], []
        for r, d in settled:
            state = "in_doubt" if r.get("in_doubt") else _STATES.get(d.status, "retrying")
            if state == "retrying" and r["attempts"] >= MAX_ATTEMPTS:
                state = "failed"
            retry_at = wall + backoff(r["attempts"]) if state == "retrying" else None
            rows.append(
                {
                    "message_id": r["message_id"],
                    "state": state,
                    "sent_at": wall if state == "sent" else None,
                    "provider_id": d.provider_id,
                    "error": d.error,
                    "next_attempt_at": retry_at,
                }
            )
            MESSAGES.labels(r["channel"], state).inc()
            if state == "sent":
                outbox.append(_sent_message(r, wall))
        async with self.engine.begin() as conn:
            await conn.execute(_SETTLE, {"rows": json_rows(rows)})
            await emit(conn, outbox)


def _sent_message(r: Mapping[str, Any], at: datetime) -> OutMessage:
    payload = MessageSent(
        campaign_id=r["campaign_id"],
        channel=r["channel"],
        message_id=r["message_id"],
        step=r["step"],
        variant=r["variant"],
    ).model_dump(mode="json")
    # The segmenter reads contact moments in business time: the step's time, not the wall clock's.
    envelope = derived_envelope(
        MESSAGE_SENT,
        workspace_id=r["workspace_id"],
        customer_id=r["customer_id"],
        payload=payload,
        at=r["created_at"],
        source="campaigns",
        identity=f"sent:{r['message_id']}",
    )
    return OutMessage.of(CAMPAIGN_OUTCOMES, envelope, r["traceparent"])
