"""Publishes `customer-changes`: whatever differs from what was last published, with a full snapshot.

Callers only say which customers may have changed; comparing with the `published` column makes
publishing idempotent and keeps the change detection in one place for the lifecycle, the
portfolio run and profile updates alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.events import Envelope
from cartera_common.events.changes import CUSTOMER_CHANGED
from cartera_common.outbox import OutMessage, emit
from cartera_common.topics import CUSTOMER_CHANGES

CustomerKey = tuple[str, str]

_NAMESPACE = uuid.UUID("0b6c1f7e-52a4-4d7e-8f0e-1c1e3f8a2b90")

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
    """
    SELECT c.workspace_id, c.customer_id, c.name, c.email, c.phone, c.locale, c.time_zone, c.industry, c.segment,
           c.consent, c.first_order_at AS customer_since, c.order_count, c.revenue, c.last_order_at,
           c.favourite_category, c.status, c.status_since, c.status_reason, c.policy_version, c.tier, c.frequency,
           c.pareto, c.unhappy, c.leave_reasons, c.responsiveness, c.p_alive, c.published, c.change_seq
    FROM customer c
    JOIN unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs)
      ON c.workspace_id = k.ws AND c.customer_id = k.cs
    """
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
        "customer_since": row["customer_since"],
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
    }


def tracked_values(snap: Mapping[str, Any]) -> dict[str, Any]:
    return {f: snap[f] for fields in TRACKED.values() for f in fields}


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


async def publish_changes(conn: AsyncConnection, keys: Sequence[CustomerKey], *, now: datetime) -> int:
    """Stages one `customer_changed` message per customer whose tracked fields changed; returns how many."""
    if not keys:
        return 0
    keys = sorted(set(keys))
    rows = (await conn.execute(_SNAPSHOT, {"ws": [k[0] for k in keys], "cs": [k[1] for k in keys]})).mappings().all()
    messages: list[OutMessage] = []
    marks: list[tuple[str, str, str, int]] = []
    for row in rows:
        snap = snapshot(row)
        current = orjson.loads(orjson.dumps(tracked_values(snap), option=orjson.OPT_UTC_Z))
        kinds, previous = diff(row["published"], current)
        if not kinds:
            continue
        seq = row["change_seq"] + 1
        ws, cs = row["workspace_id"], row["customer_id"]
        payload = {
            "changes": kinds,
            "previous": previous,
            "reason": row["status_reason"] if "status" in kinds else None,
            "policy_version": row["policy_version"],
            "customer": snap,
        }
        envelope = Envelope.model_construct(
            event_id=str(uuid.uuid5(_NAMESPACE, f"{ws}:{cs}:{seq}")),
            type=CUSTOMER_CHANGED,
            schema_version=1,
            workspace_id=ws,
            customer_id=cs,
            occurred_at=now,
            received_at=now,
            source="segmenter",
            payload=payload,
        )
        messages.append(OutMessage.of(CUSTOMER_CHANGES, envelope))
        marks.append((ws, cs, orjson.dumps(current).decode(), seq))
    if marks:
        await conn.execute(
            _MARK,
            {
                "ws": [m[0] for m in marks],
                "cs": [m[1] for m in marks],
                "published": [m[2] for m in marks],
                "seq": [m[3] for m in marks],
            },
        )
        await emit(conn, messages)
    return len(messages)
