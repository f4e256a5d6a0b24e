"""Orders as every consuming service keeps them: folded per batch from the order events, then upserted
into the service's own `customer_order` table (each service owns one; none reads another's).

Idempotent by order id; a refund adds up, a cancellation sticks, and the newest version of an
order wins whatever the arrival order, so late and duplicated events land where they belong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, MetaData, Numeric, PrimaryKeyConstraint, String, Table, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.db import json_rows
from cartera_common.events import Envelope

ORDER_TYPES = ("order_completed", "order_refunded", "order_cancelled")
MONEY = Numeric(18, 4)


def order_table(metadata: MetaData) -> Table:
    """`customer_order` in a service's schema: the shape `upsert_orders` writes."""
    return Table(
        "customer_order",
        metadata,
        Column("workspace_id", String(64), nullable=False),
        Column("customer_id", String(256), nullable=False),
        Column("order_id", String(256), nullable=False),
        Column("amount", MONEY),
        Column("currency", String(3)),
        Column("margin", MONEY),
        Column("coupon_code", Text),
        Column("categories", ARRAY(Text)),
        Column("occurred_at", DateTime(timezone=True)),
        Column("refunded", MONEY, nullable=False, server_default="0"),
        Column("completed", Boolean, nullable=False, server_default="false"),
        Column("cancelled", Boolean, nullable=False, server_default="false"),
        PrimaryKeyConstraint("workspace_id", "customer_id", "order_id"),
    )


OrderKey = tuple[str, str, str]  # workspace, customer, order


@dataclass(frozen=True, slots=True)
class OrderChange:
    amount: Decimal | None = None
    currency: str | None = None
    margin: Decimal | None = None
    coupon_code: str | None = None
    occurred_at: datetime | None = None
    refunded: Decimal = Decimal(0)
    completed: bool = False
    cancelled: bool = False
    categories: tuple[str, ...] = ()


def fold_orders(events: Iterable[Envelope]) -> dict[OrderKey, OrderChange]:
    """One change per order, however many of its events the batch holds."""
    out: dict[OrderKey, OrderChange] = {}
    for e in events:
        if e.type in ORDER_TYPES:
            key = (e.workspace_id, e.customer_id, str(e.payload["order_id"]))
            out[key] = apply_order_event(out.get(key, OrderChange()), e)
    return out


def apply_order_event(current: OrderChange, e: Envelope) -> OrderChange:
    p = e.payload
    if e.type == "order_completed":
        if current.completed and current.occurred_at is not None and current.occurred_at > e.occurred_at:
            return current  # a newer version of the order is already in this batch
        # Built directly, not with replace(): this runs once per order in every consumer.
        return OrderChange(
            amount=to_decimal(p.get("amount")),
            currency=p.get("currency"),
            margin=to_decimal(p.get("margin")),
            coupon_code=p.get("coupon_code"),
            occurred_at=e.occurred_at,
            refunded=current.refunded,
            completed=True,
            cancelled=current.cancelled,
            categories=tuple(sorted({str(i["category"]) for i in p.get("items") or () if i.get("category")})),
        )
    if e.type == "order_refunded":
        return replace(current, refunded=current.refunded + (to_decimal(p.get("amount")) or Decimal(0)))
    return replace(current, cancelled=True)


def to_decimal(value: Any) -> Decimal | None:
    """Event amounts arrive as JSON numbers or strings; str() keeps a float's printed digits."""
    return None if value is None else Decimal(str(value))


_UPSERT = text(
    """
    INSERT INTO customer_order AS o (workspace_id, customer_id, order_id, amount, currency, margin, coupon_code,
                                     occurred_at, refunded, completed, cancelled, categories)
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS t(workspace_id text, customer_id text, order_id text, amount numeric, currency text, margin numeric,
             coupon_code text, occurred_at timestamptz, refunded numeric, completed boolean, cancelled boolean,
             categories text[])
    ON CONFLICT (workspace_id, customer_id, order_id) DO UPDATE
    SET amount = CASE WHEN EXCLUDED.completed AND (o.occurred_at IS NULL OR EXCLUDED.occurred_at >= o.occurred_at)
                      THEN EXCLUDED.amount ELSE o.amount END,
        currency = COALESCE(o.currency, EXCLUDED.currency),
        margin = COALESCE(EXCLUDED.margin, o.margin),
        coupon_code = COALESCE(o.coupon_code, EXCLUDED.coupon_code),
        categories = COALESCE(EXCLUDED.categories, o.categories),
        occurred_at = COALESCE(o.occurred_at, EXCLUDED.occurred_at),
        refunded = o.refunded + EXCLUDED.refunded,
        completed = o.completed OR EXCLUDED.completed,
        cancelled = o.cancelled OR EXCLUDED.cancelled
    """
)


async def upsert_orders(conn: AsyncConnection, orders: dict[OrderKey, OrderChange]) -> None:
    """Keys sorted: a stable lock order keeps two consumers from deadlocking."""
    if not orders:
        return
    rows = (
        {"workspace_id": k[0], "customer_id": k[1], "order_id": k[2], "amount": r.amount, "currency": r.currency,
         "margin": r.margin, "coupon_code": r.coupon_code, "occurred_at": r.occurred_at, "refunded": r.refunded,
         "completed": r.completed, "cancelled": r.cancelled, "categories": r.categories or None}
        for k in sorted(orders)
        for r in (orders[k],)
    )  # fmt: skip
    await conn.execute(_UPSERT, {"rows": json_rows(rows)})
