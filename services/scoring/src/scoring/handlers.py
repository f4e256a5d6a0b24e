"""The scoring service's reactions: keep what the value and lead scores need, then rescore the customers
a batch touched with the workspace's current fit and rules (not only at refit)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.clock import Clock
from cartera_common.events import Envelope
from cartera_common.orders import fold_orders, upsert_orders
from scoring.domain.fold import fold_changes, fold_signals
from scoring.profiles import write_changes, write_signals
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

    async def apply_changes(self, conn: AsyncConnection, events: list[Envelope]) -> None:
        """The segmenter's standing of each customer (status, tier, Pareto…) and the comebacks it implies."""
        changes = fold_changes(events)
        await write_changes(conn, changes)
        await rescore(conn, changes.standings.keys(), now=self.clock.now())
