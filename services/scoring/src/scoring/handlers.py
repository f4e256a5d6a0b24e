"""The scoring service's reactions: for now it keeps the orders its value models will be fitted on."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.events import Envelope
from cartera_common.orders import fold_orders, upsert_orders


async def apply_events(conn: AsyncConnection, events: list[Envelope]) -> None:
    """Orders, refunds and cancellations, idempotent by order id; other events are not needed yet."""
    await upsert_orders(conn, fold_orders(events))
