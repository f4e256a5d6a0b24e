"""What campaigns knows of each customer, learned from its three topics and its own unsubscribe links.

The snapshot is the segmenter's (the latest `customer_changed` wins by event time); the decision is
scoring's "do we want them back?"; consent is what the `events` stream and unsubscribe links said,
kept here too because a withdrawal must stop the next message even before the segmenter has
republished the customer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns.domain.model import WinbackDecision
from cartera_common.db import json_rows
from cartera_common.events.changes import CustomerSnapshot

CustomerKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Customer:
    workspace_id: str
    customer_id: str
    snapshot: CustomerSnapshot | None = None
    decision: WinbackDecision | None = None
    consent: Mapping[str, bool] = field(default_factory=dict)
    unsubscribed_at: datetime | None = None

    @property
    def key(self) -> CustomerKey:
        return (self.workspace_id, self.customer_id)

    def effective_consent(self) -> dict[str, bool]:
        """The snapshot's consent, overridden by what was withdrawn here since; an unsubscribe stops everything."""
        merged = dict(self.snapshot.consent if self.snapshot else {})
        merged.update(self.consent)
        if self.unsubscribed_at is not None:
            merged["all"] = False
        return merged


_SNAPSHOTS = text(
    """
    INSERT INTO customer (workspace_id, customer_id, snapshot, snapshot_at)
    SELECT ws, cs, snapshot, at FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS t(ws text, cs text, snapshot jsonb, at timestamptz)
    ON CONFLICT (workspace_id, customer_id) DO UPDATE
        SET snapshot = EXCLUDED.snapshot, snapshot_at = EXCLUDED.snapshot_at
        WHERE customer.snapshot_at IS NULL OR EXCLUDED.snapshot_at >= customer.snapshot_at
    """
)

_DECISIONS = text(
    """
    INSERT INTO customer (workspace_id, customer_id, decision, decision_at)
    SELECT ws, cs, decision, at FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS t(ws text, cs text, decision jsonb, at timestamptz)
    ON CONFLICT (workspace_id, customer_id) DO UPDATE
        SET decision = EXCLUDED.decision, decision_at = EXCLUDED.decision_at
        WHERE customer.decision_at IS NULL OR EXCLUDED.decision_at >= customer.decision_at
    """
)

_CONSENT = text(
    """
    INSERT INTO customer (workspace_id, customer_id, consent)
    SELECT ws, cs, consent FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(ws text, cs text, consent jsonb)
    ON CONFLICT (workspace_id, customer_id) DO UPDATE SET consent = customer.consent || EXCLUDED.consent
    """
)

_UNSUBSCRIBE = text(
    """
    INSERT INTO customer (workspace_id, customer_id, unsubscribed_at) VALUES (:ws, :cs, :at)
    ON CONFLICT (workspace_id, customer_id) DO UPDATE
        SET unsubscribed_at = COALESCE(customer.unsubscribed_at, EXCLUDED.unsubscribed_at)
    """
)


async def save_snapshots(
    conn: AsyncConnection, latest: Mapping[CustomerKey, tuple[datetime, CustomerSnapshot]]
) -> None:
    rows = [
        {"ws": k[0], "cs": k[1], "snapshot": s.model_dump(mode="json"), "at": at}
        for k, (at, s) in sorted(latest.items())
    ]
    if rows:
        await conn.execute(_SNAPSHOTS, {"rows": json_rows(rows)})


async def save_decisions(conn: AsyncConnection, latest: Mapping[CustomerKey, tuple[datetime, WinbackDecision]]) -> None:
    rows = [
        {"ws": k[0], "cs": k[1], "decision": {"worth": d.worth, "intensity": d.intensity}, "at": at}
        for k, (at, d) in sorted(latest.items())
    ]
    if rows:
        await conn.execute(_DECISIONS, {"rows": json_rows(rows)})


async def save_consent(conn: AsyncConnection, consent: Mapping[CustomerKey, Mapping[str, bool]]) -> None:
    rows = [{"ws": k[0], "cs": k[1], "consent": dict(c)} for k, c in sorted(consent.items())]
    if rows:
        await conn.execute(_CONSENT, {"rows": json_rows(rows)})


async def unsubscribe(conn: AsyncConnection, key: CustomerKey, at: datetime) -> None:
    await conn.execute(_UNSUBSCRIBE, {"ws": key[0], "cs": key[1], "at": at})


async def load(
    conn: AsyncConnection, keys: Iterable[CustomerKey], *, lock: bool = False
) -> dict[CustomerKey, Customer]:
    """`lock` serialises everything that may enrol a customer, so two paths never start two sequences."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    sql = f"""
        SELECT c.* FROM customer c
        JOIN unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs)
          ON c.workspace_id = k.ws AND c.customer_id = k.cs
        ORDER BY c.workspace_id, c.customer_id {"FOR UPDATE OF c" if lock else ""}
    """  # noqa: S608 - only the lock clause is formatted in
    result = await conn.execute(text(sql), {"ws": [k[0] for k in keys], "cs": [k[1] for k in keys]})
    return {(r["workspace_id"], r["customer_id"]): from_row(r) for r in result.mappings()}


def from_row(row: Mapping[Any, Any]) -> Customer:
    decision = row["decision"]
    return Customer(
        workspace_id=row["workspace_id"],
        customer_id=row["customer_id"],
        snapshot=CustomerSnapshot.model_validate(row["snapshot"]) if row["snapshot"] else None,
        decision=WinbackDecision(decision["worth"], decision.get("intensity", "full")) if decision else None,
        consent=row["consent"] or {},
        unsubscribed_at=row["unsubscribed_at"],
    )


async def erase(conn: AsyncConnection, keys: Iterable[CustomerKey]) -> None:
    """Right to erasure: the copy goes, and the messages keep their counts but lose their content."""
    keys = sorted(set(keys))
    if not keys:
        return
    params = {"ws": [k[0] for k in keys], "cs": [k[1] for k in keys]}
    await conn.execute(
        text(
            """
            DELETE FROM customer c USING unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs)
            WHERE c.workspace_id = k.ws AND c.customer_id = k.cs
            """
        ),
        params,
    )
    await conn.execute(
        text(
            """
            UPDATE message m SET recipient = NULL, subject = NULL, body = NULL, html = NULL
            FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs)
            WHERE m.workspace_id = k.ws AND m.customer_id = k.cs
            """
        ),
        params,
    )
