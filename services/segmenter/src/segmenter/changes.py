"""Publishes `customer-changes`: whatever differs from what was last published, with a full snapshot.

Callers only say which customers may have changed; comparing with the `published` column makes
publishing idempotent and keeps the change detection in one place for the lifecycle, the
portfolio run and profile updates alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.events.changes import CUSTOMER_CHANGED
from cartera_common.events.envelope import derived_envelope
from cartera_common.outbox import OutMessage, emit
from cartera_common.topics import CUSTOMER_CHANGES
from segmenter.locks import LOCKING_ORDER

CustomerKey = tuple[str, str]

# change kind -> the snapshot fields it watches
TRACKED: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "tier": ("tier",),
    "pareto": ("pareto",),
    "unhappy": ("unhappy", "leave_reasons"),
    "consent": ("consent",),
    "responsiveness": ("responsiveness",),
    "profile": ("name", "email", "phone", "locale", "time_zone"),
}

_SNAPSHOT = text(
    f"""
    SELECT c.workspace_id, c.customer_id, c.name, c.email, c.phone, c.locale, c.time_zone, c.industry, c.segment,
           c.consent, c.first_order_at, c.order_count, c.revenue, c.margin, c.cost_to_serve, c.last_order_at,
           c.favourite_category, c.status, c.status_since, c.status_reason, c.policy_version, c.tier, c.frequency,
           c.pareto, c.unhappy, c.leave_reasons, c.responsiveness, c.p_alive, c.published, c.change_seq
    FROM customer c
    JOIN unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) WITH ORDINALITY AS k(ws, cs, i)
      ON c.workspace_id = k.ws AND c.customer_id = k.cs
    {LOCKING_ORDER}
    """  # noqa: S608 - a constant
)

_MARK = text(
    """
    UPDATE customer c SET published = p.published, change_seq = p.seq
    FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:published AS jsonb[]), CAST(:seq AS int[]))
         AS p(ws, cs, published, seq)
    WHERE c.workspace_id = p.ws AND c.customer_id = p.cs
    """
)


def snapshot(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The `CustomerSnapshot` payload of one customer row, JSON-ready."""
    return {
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "locale": row["locale"],
        "time_zone": row["time_zone"],
        "industry": row["industry"],
        "segment": row["segment"],
        "consent": {ch: bool(v.get("granted")) for ch, v in (row["consent"] or {}).items()},
        "customer_since": row["first_order_at"],
        "order_count": row["order_count"],
        "revenue": float(row["revenue"]),
        "last_order_at": row["last_order_at"],
        "favourite_category": row["favourite_category"],
        "status": row["status"],
        "status_since": row["status_since"],
        "tier": row["tier"],
        "frequency": row["frequency"],
        "pareto": row["pareto"],
        "unhappy": row["unhappy"],
        "leave_reasons": list(row["leave_reasons"] or []),
        "responsiveness": row["responsiveness"],
        "p_alive": row["p_alive"],
        "unprofitable": unprofitable(row),
    }


def unprofitable(row: Mapping[Any, Any]) -> bool:
    """As the customer API says it (`repository`): profit below zero, with a cost to serve recorded."""
    cost = row["cost_to_serve"] or 0
    income = row["margin"] if row["margin"] is not None else row["revenue"]
    return bool(cost > 0 and (income or 0) - cost < 0)


_FIELDS = tuple(f for fields in TRACKED.values() for f in fields)


def tracked_values(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The tracked fields of a customer row, JSON-ready: equal to `published` when nothing changed."""
    out = {f: row[f] for f in _FIELDS}
    out["consent"] = {ch: bool(v.get("granted")) for ch, v in (row["consent"] or {}).items()}
    out["leave_reasons"] = list(row["leave_reasons"] or ())
    return out


def diff(published: Mapping[str, Any] | None, current: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The change kinds whose fields differ, and the previous values of those fields."""
    before = published or {}
    kinds = [k for k, fields in TRACKED.items() if any(before.get(f) != current[f] for f in fields)]
    if published is None:
        # Never published: a customer becomes interesting to campaigns once it has a status or a tier.
        kinds = (
            [k for k in kinds if k in ("status", "tier")] if current["status"] != "prospect" or current["tier"] else []
        )
    previous = {f: before.get(f) for k in kinds for f in TRACKED[k]}
    return kinds, previous


@dataclass(frozen=True, slots=True)
class Change:
    message: OutMessage
    published: str  # the tracked values now published, as JSON for the `published` column
    seq: int


def change_for(row: Mapping[Any, Any], *, now: datetime) -> Change | None:
    """The `customer_changed` message for one customer row, or None when nothing tracked changed.

    `row` carries the snapshot columns (as in `_SNAPSHOT`), `published` and `change_seq`.
    """
    current = tracked_values(row)
    if row["published"] == current:
        return None  # the common case, decided without building the snapshot
    kinds, previous = diff(row["published"], current)
    if not kinds:
        return None
    snap = snapshot(row)
    seq = row["change_seq"] + 1
    ws, cs = row["workspace_id"], row["customer_id"]
    payload = {
        "changes": kinds,
        "previous": previous,
        "reason": row["status_reason"] if "status" in kinds else None,
        "policy_version": row["policy_version"],
        "customer": snap,
    }
    envelope = derived_envelope(
        CUSTOMER_CHANGED,
        workspace_id=ws,
        customer_id=cs,
        payload=payload,
        at=now,
        source="segmenter",
        identity=str(seq),
    )
    return Change(OutMessage.of(CUSTOMER_CHANGES, envelope), orjson.dumps(current).decode(), seq)


async def publish_changes(conn: AsyncConnection, keys: Sequence[CustomerKey], *, now: datetime) -> int:
    """Stages one `customer_changed` message per customer whose tracked fields changed; returns how many."""
    if not keys:
        return 0
    keys = sorted(set(keys))
    rows = (await conn.execute(_SNAPSHOT, {"ws": [k[0] for k in keys], "cs": [k[1] for k in keys]})).mappings().all()
    marks: list[tuple[str, str, Change]] = []
    for row in rows:
        change = change_for(row, now=now)
        if change is not None:
            marks.append((row["workspace_id"], row["customer_id"], change))
    if marks:
        params = {
            "ws": [m[0] for m in marks],
            "cs": [m[1] for m in marks],
            "published": [m[2].published for m in marks],
            "seq": [m[2].seq for m in marks],
        }
        await conn.execute(_MARK, params)
        await emit(conn, [m[2].message for m in marks])
    return len(marks)
