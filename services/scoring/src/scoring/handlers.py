"""The scoring service's reactions: keep what the value and lead scores need, then rescore the customers
a batch touched with the workspace's current fit and rules (not only at refit)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.clock import Clock
from cartera_common.events import Envelope
from cartera_common.events.changes import WINBACK_ENDED
from cartera_common.orders import fold_orders, upsert_orders
from scoring.domain.fold import fold_changes, fold_signals
from scoring.profiles import count_winbacks, write_changes, write_signals
from scoring.rescore import rescore


@dataclass(frozen=True)
class Handlers:
    clock: Clock

    async def apply_events(self, conn: AsyncConnection, events: list[Envelope]) -> None:
        """Orders (idempotent by order id), profiles, engagement and cost to serve; erasures forget."""
        orders = fold_orders(events)
        await upsert_orders(conn, orders)
        signals = fold_signals(events)
        await write_signals(conn, signals)
        touched = ({(k[0], k[1]) for k in orders} | signals.touched) - signals.erased
        await rescore(conn, touched, now=self.clock.now())

    async def apply_outcomes(self, conn: AsyncConnection, events: list[Envelope]) -> None:
        """How win-backs end: the workspace's own rate of bringing customers back, for "do we want them
        back?". Only treatment enrolments that ran (not the control group, not cancelled ones) count."""
        tried: Counter[str] = Counter()
        won: Counter[str] = Counter()
        for e in events:
            outcome = e.payload.get("outcome")
            if e.type != WINBACK_ENDED or e.payload.get("control") or outcome in (None, "cancelled"):
                continue
            tried[e.workspace_id] += 1
            won[e.workspace_id] += outcome == "reactivated"
        await count_winbacks(conn, tried, won)

    async def apply_changes(self, conn: AsyncConnection, events: list[Envelope]) -> None:
        """The segmenter's standing of each customer (status, tier, Pareto…) and the comebacks it implies."""
        changes = fold_changes(events)
        await write_changes(conn, changes)
        await rescore(conn, changes.standings.keys(), now=self.clock.now())
