"""Applies consumed events to customer state, set-based: a few statements per batch, not per event."""

from __future__ import annotations

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.events import Envelope
from segmenter.domain.fold import PROFILE_FIELDS, BatchChanges, fold

_TOUCH = text(
    """
    INSERT INTO customer (workspace_id, customer_id, first_seen_at, last_event_at)
    SELECT * FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:first AS timestamptz[]), CAST(:last AS timestamptz[]))
    ON CONFLICT (workspace_id, customer_id) DO UPDATE
    SET first_seen_at = LEAST(customer.first_seen_at, EXCLUDED.first_seen_at),
        last_event_at = GREATEST(customer.last_event_at, EXCLUDED.last_event_at),
        updated_at = now()
    """
)

_ORDERS = text(
    """
    INSERT INTO customer_order AS o (workspace_id, customer_id, order_id, amount, currency, margin, coupon_code,
                                     occurred_at, refunded, completed, cancelled)
    SELECT * FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:ids AS text[]), CAST(:amount AS numeric[]),
                         CAST(:currency AS text[]), CAST(:margin AS numeric[]), CAST(:coupon AS text[]),
                         CAST(:at AS timestamptz[]), CAST(:refunded AS numeric[]), CAST(:completed AS boolean[]),
                         CAST(:cancelled AS boolean[]))
    ON CONFLICT (workspace_id, customer_id, order_id) DO UPDATE
    SET amount = CASE WHEN EXCLUDED.completed AND (o.occurred_at IS NULL OR EXCLUDED.occurred_at >= o.occurred_at)
                      THEN EXCLUDED.amount ELSE o.amount END,
        currency = COALESCE(o.currency, EXCLUDED.currency),
        margin = COALESCE(EXCLUDED.margin, o.margin),
        coupon_code = COALESCE(o.coupon_code, EXCLUDED.coupon_code),
        occurred_at = COALESCE(o.occurred_at, EXCLUDED.occurred_at),
        refunded = o.refunded + EXCLUDED.refunded,
        completed = o.completed OR EXCLUDED.completed,
        cancelled = o.cancelled OR EXCLUDED.cancelled
    """
)

_RECOMPUTE = text(
    """
    UPDATE customer c
    SET order_count = agg.n, revenue = agg.revenue, first_order_at = agg.first_at, last_order_at = agg.last_at,
        updated_at = now()
    FROM (
        SELECT o.workspace_id, o.customer_id,
               count(*) FILTER (WHERE o.completed AND NOT o.cancelled) AS n,
               COALESCE(sum(o.amount - o.refunded) FILTER (WHERE o.completed AND NOT o.cancelled), 0) AS revenue,
               min(o.occurred_at) FILTER (WHERE o.completed AND NOT o.cancelled) AS first_at,
               max(o.occurred_at) FILTER (WHERE o.completed AND NOT o.cancelled) AS last_at
        FROM customer_order o
        JOIN unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs)
          ON o.workspace_id = k.ws AND o.customer_id = k.cs
        GROUP BY o.workspace_id, o.customer_id
    ) agg
    WHERE c.workspace_id = agg.workspace_id AND c.customer_id = agg.customer_id
    """
)

_PROFILE_SET = ",\n        ".join(
    f"{f} = CASE WHEN c.profile_at IS NULL OR p.at >= c.profile_at THEN COALESCE(p.{f}, c.{f}) ELSE COALESCE(c.{f}, p.{f}) END"
    for f in PROFILE_FIELDS
)
# Built from the constant PROFILE_FIELDS only, never from input.
_PROFILES = text(
    f"""
    UPDATE customer c
    SET {_PROFILE_SET},
        traits = CASE WHEN c.profile_at IS NULL OR p.at >= c.profile_at THEN c.traits || p.traits ELSE p.traits || c.traits END,
        profile_at = GREATEST(c.profile_at, p.at),
        updated_at = now()
    FROM (
        SELECT * FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:at AS timestamptz[]),
                             {", ".join(f"CAST(:{f} AS text[])" for f in PROFILE_FIELDS)}, CAST(:traits AS jsonb[]))
        AS t(workspace_id, customer_id, at, {", ".join(PROFILE_FIELDS)}, traits)
    ) p
    WHERE c.workspace_id = p.workspace_id AND c.customer_id = p.customer_id
    """,  # noqa: S608
)


async def apply_events(conn: AsyncConnection, events: list[Envelope]) -> None:
    """Every event makes the customer known; orders and profile updates change their state."""
    changes = fold(events)
    await _touch(conn, changes)
    if changes.orders:
        await _orders(conn, changes)
    if changes.profiles:
        await _profiles(conn, changes)


async def _touch(conn: AsyncConnection, changes: BatchChanges) -> None:
    keys = sorted(changes.seen)  # a stable order keeps two consumers from deadlocking
    await conn.execute(
        _TOUCH,
        {
            "ws": [k[0] for k in keys],
            "cs": [k[1] for k in keys],
            "first": [changes.seen[k].first for k in keys],
            "last": [changes.seen[k].last for k in keys],
        },
    )


async def _orders(conn: AsyncConnection, changes: BatchChanges) -> None:
    keys = sorted(changes.orders)
    rows = [changes.orders[k] for k in keys]
    await conn.execute(
        _ORDERS,
        {
            "ws": [k[0] for k in keys],
            "cs": [k[1] for k in keys],
            "ids": [k[2] for k in keys],
            "amount": [r.amount for r in rows],
            "currency": [r.currency for r in rows],
            "margin": [r.margin for r in rows],
            "coupon": [r.coupon_code for r in rows],
            "at": [r.occurred_at for r in rows],
            "refunded": [r.refunded for r in rows],
            "completed": [r.completed for r in rows],
            "cancelled": [r.cancelled for r in rows],
        },
    )
    customers = sorted({(k[0], k[1]) for k in keys})
    await conn.execute(_RECOMPUTE, {"ws": [c[0] for c in customers], "cs": [c[1] for c in customers]})


async def _profiles(conn: AsyncConnection, changes: BatchChanges) -> None:
    keys = sorted(changes.profiles)
    rows = [changes.profiles[k] for k in keys]
    params: dict[str, object] = {
        "ws": [k[0] for k in keys],
        "cs": [k[1] for k in keys],
        "at": [r.at for r in rows],
        "traits": [orjson.dumps(r.traits).decode() for r in rows],
    }
    for f in PROFILE_FIELDS:
        params[f] = [None if r.fields.get(f) is None else str(r.fields[f]) for r in rows]
    await conn.execute(_PROFILES, params)
