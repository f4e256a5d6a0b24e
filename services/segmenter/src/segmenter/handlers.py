"""The segmenter's reactions to its three topics: write what happened, then re-evaluate who it touched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.clock import Clock
from cartera_common.events import Envelope
from cartera_common.events.changes import CUSTOMER_RESPONDED, MESSAGE_SENT, SCORES_UPDATED, WINBACK_ENDED
from segmenter.changes import CustomerKey
from segmenter.domain.fold import fold
from segmenter.locks import lock_customers
from segmenter.reevaluate import reevaluate
from segmenter.upserts import write_batch

_SCORES = text(
    """
    UPDATE customer c SET p_alive = t.p, p_alive_at = t.at
    FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:p AS float8[]), CAST(:at AS timestamptz[]))
         AS t(ws, cs, p, at)
    WHERE c.workspace_id = t.ws AND c.customer_id = t.cs AND (c.p_alive_at IS NULL OR t.at >= c.p_alive_at)
    """
)

_OUTCOMES = text(
    """
    UPDATE customer c
    SET contacted_at = GREATEST(c.contacted_at, t.contacted), responded_at = GREATEST(c.responded_at, t.responded),
        winback_ended_at = GREATEST(c.winback_ended_at, t.ended)
    FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:contacted AS timestamptz[]),
                CAST(:responded AS timestamptz[]), CAST(:ended AS timestamptz[])) AS t(ws, cs, contacted, responded, ended)
    WHERE c.workspace_id = t.ws AND c.customer_id = t.cs
    """
)


@dataclass(frozen=True)
class Handlers:
    clock: Clock

    async def apply_events(self, conn: AsyncConnection, events: list[Envelope]) -> None:
        """Every event makes the customer known; then their lifecycle is brought up to date."""
        changes = fold(events)
        await write_batch(conn, changes)
        keys = [k for k in changes.seen if k not in changes.erased]
        recount = {(k[0], k[1]) for k in changes.orders}
        profiled = changes.profiles.keys() | changes.consent.keys()
        await reevaluate(
            conn, keys, now=self.clock.now(), recount=recount, seen=changes.seen, publish=profiled, keep_early_due=True
        )

    async def apply_scores(self, conn: AsyncConnection, events: list[Envelope]) -> None:
        """P(alive) from the scoring model moves customers whose suspension point is probabilistic."""
        latest: dict[CustomerKey, tuple[datetime, float]] = {}
        for e in events:
            p = e.payload.get("p_alive")
            key = (e.workspace_id, e.customer_id)
            if e.type == SCORES_UPDATED and p is not None and (key not in latest or e.occurred_at >= latest[key][0]):
                latest[key] = (e.occurred_at, float(p))
        if not latest:
            return
        keys = sorted(latest)
        params = {
            "ws": [k[0] for k in keys],
            "cs": [k[1] for k in keys],
            "p": [latest[k][1] for k in keys],
            "at": [latest[k][0] for k in keys],
        }
        await lock_customers(conn, keys)
        await conn.execute(_SCORES, params)
        await reevaluate(conn, keys, now=self.clock.now())

    async def apply_outcomes(self, conn: AsyncConnection, events: list[Envelope]) -> None:
        """Messages sent and answered feed responsiveness; a win-back ended without response means lost;
        an unsubscribe through a campaign's link is a consent withdrawal like any other.
        Every customer concerned is locked first: the two steps below lock theirs one after the other."""
        unsubscribed = [e for e in events if e.type == "unsubscribed"]
        moments: dict[CustomerKey, dict[str, datetime]] = {}
        for e in events:
            field = {MESSAGE_SENT: "contacted", CUSTOMER_RESPONDED: "responded"}.get(e.type)
            if e.type == WINBACK_ENDED and e.payload.get("outcome") == "no_response":
                field = "ended"
            if field is None:
                continue
            seen = moments.setdefault((e.workspace_id, e.customer_id), {})
            seen[field] = max(seen.get(field, e.occurred_at), e.occurred_at)
        await lock_customers(conn, moments.keys() | {(e.workspace_id, e.customer_id) for e in unsubscribed})
        if unsubscribed:
            await self.apply_events(conn, unsubscribed)
        if not moments:
            return
        keys = sorted(moments)
        params: dict[str, list[object]] = {"ws": [k[0] for k in keys], "cs": [k[1] for k in keys]}
        for field in ("contacted", "responded", "ended"):
            params[field] = [moments[k].get(field) for k in keys]
        await conn.execute(_OUTCOMES, params)
        await reevaluate(conn, keys, now=self.clock.now())
