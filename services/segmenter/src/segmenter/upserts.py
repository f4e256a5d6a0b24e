"""Writes one folded batch of events: a few set-based statements per batch, never one per event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.db import json_rows
from cartera_common.orders import upsert_orders
from segmenter.domain.fold import PROFILE_FIELDS, BatchChanges
from segmenter.locks import lock_customers

# New customers get a row; existing ones get their first/last seen and costs in reevaluate()'s one write.
_TOUCH = text(
    """
    INSERT INTO customer (workspace_id, customer_id, first_seen_at, last_event_at)
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS t(workspace_id text, customer_id text, first_seen_at timestamptz, last_event_at timestamptz)
    ON CONFLICT (workspace_id, customer_id) DO NOTHING
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

_CONTACTS = text(
    """
    UPDATE customer c
    SET contacted_at = GREATEST(c.contacted_at, t.contacted),
        responded_at = GREATEST(c.responded_at, t.responded),
        interest_kind = CASE WHEN t.interest IS NOT NULL AND (c.interest_at IS NULL OR t.interest >= c.interest_at)
                             THEN t.kind ELSE c.interest_kind END,
        interest_at = GREATEST(c.interest_at, t.interest)
    FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:contacted AS timestamptz[]),
                CAST(:responded AS timestamptz[]), CAST(:interest AS timestamptz[]), CAST(:kind AS text[]))
         AS t(ws, cs, contacted, responded, interest, kind)
    WHERE c.workspace_id = t.ws AND c.customer_id = t.cs
    """
)

# Consent per channel: {"email": {"granted": true, "at": "…Z"}}; the later decision for a channel wins.
_CONSENT = text(
    """
    UPDATE customer c
    SET consent = (SELECT jsonb_object_agg(ch, v) FROM (
                     SELECT DISTINCT ON (ch) ch, v
                     FROM (SELECT * FROM jsonb_each(c.consent) UNION ALL SELECT * FROM jsonb_each(t.patch)) AS e(ch, v)
                     ORDER BY ch, v ->> 'at' DESC) AS latest)
    FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:patch AS jsonb[])) AS t(ws, cs, patch)
    WHERE c.workspace_id = t.ws AND c.customer_id = t.cs
    """
)

_ISSUES = text(
    """
    INSERT INTO customer_issue AS i (workspace_id, customer_id, kind, ref, reason_code, detail, opened_at, resolved_at)
    SELECT ws, cs, kind, ref, reason, detail, COALESCE(opened, resolved), resolved
    FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:kind AS text[]), CAST(:ref AS text[]),
                CAST(:reason AS text[]), CAST(:detail AS text[]), CAST(:opened AS timestamptz[]),
                CAST(:resolved AS timestamptz[])) AS t(ws, cs, kind, ref, reason, detail, opened, resolved)
    ON CONFLICT (workspace_id, customer_id, kind, ref) DO UPDATE
    SET reason_code = COALESCE(i.reason_code, EXCLUDED.reason_code),
        detail = COALESCE(i.detail, EXCLUDED.detail),
        opened_at = LEAST(i.opened_at, EXCLUDED.opened_at),
        resolved_at = GREATEST(i.resolved_at, EXCLUDED.resolved_at)
    """
)

_OPPORTUNITIES = text(
    """
    INSERT INTO opportunity AS o (workspace_id, customer_id, opportunity_id, amount, currency, probability,
                                  expected_close, stage, state, updated_at)
    SELECT * FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:ids AS text[]), CAST(:amount AS numeric[]),
                         CAST(:currency AS text[]), CAST(:probability AS float8[]), CAST(:close AS date[]),
                         CAST(:stage AS text[]), CAST(:state AS text[]), CAST(:at AS timestamptz[]))
    ON CONFLICT (workspace_id, customer_id, opportunity_id) DO UPDATE
    SET amount = COALESCE(EXCLUDED.amount, o.amount), currency = EXCLUDED.currency,
        probability = COALESCE(EXCLUDED.probability, o.probability),
        expected_close = COALESCE(EXCLUDED.expected_close, o.expected_close),
        stage = COALESCE(EXCLUDED.stage, o.stage), state = EXCLUDED.state, updated_at = EXCLUDED.updated_at
    WHERE EXCLUDED.updated_at >= o.updated_at
    """
)

_TIMELINE = text(
    """
    INSERT INTO timeline (workspace_id, customer_id, occurred_at, event_id, type, summary)
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS t(workspace_id text, customer_id text, occurred_at timestamptz, event_id text, type text, summary jsonb)
    ON CONFLICT DO NOTHING
    """
)

_ERASE = [
    text(
        f"DELETE FROM {table} WHERE (workspace_id, customer_id) IN "  # noqa: S608 - constant table names
        "(SELECT * FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[])))"
    )
    for table in ("customer_order", "customer_issue", "opportunity", "timeline", "status_change", "customer")
]


def _keys(keys: Sequence[tuple[str, ...]]) -> dict[str, Any]:
    return {"ws": [k[0] for k in keys], "cs": [k[1] for k in keys]}


async def write_batch(conn: AsyncConnection, changes: BatchChanges) -> None:
    """A batch that updates customers here locks every customer it saw first, in the one order
    (`locks`): the updates join their keys to `customer` in whatever order their plans pick, and
    locking only those would have the re-evaluation lock the rest later, out of order. A batch of
    orders alone locks nothing here; the re-evaluation's one read locks its customers."""
    await _touch(conn, changes)
    if changes.profiles or changes.contacts or changes.consent or changes.erased:
        await lock_customers(conn, changes.seen.keys())
    await upsert_orders(conn, changes.orders)  # the customers' totals are recounted by reevaluate()
    if changes.profiles:
        await _profiles(conn, changes)
    if changes.contacts:
        keys = sorted(changes.contacts)
        rows = [changes.contacts[k] for k in keys]
        params = _keys(keys) | {
            "contacted": [r.contacted_at for r in rows],
            "responded": [r.responded_at for r in rows],
            "interest": [r.interest_at for r in rows],
            "kind": [r.interest_kind for r in rows],
        }
        await conn.execute(_CONTACTS, params)
    if changes.consent:
        keys = sorted(changes.consent)
        patches = [
            orjson.dumps(
                {ch: {"granted": g, "at": at} for ch, (g, at) in changes.consent[k].items()}, option=orjson.OPT_UTC_Z
            ).decode()
            for k in keys
        ]
        await conn.execute(_CONSENT, _keys(keys) | {"patch": patches})
    if changes.issues:
        await _issues(conn, changes)
    if changes.opportunities:
        await _opportunities(conn, changes)
    if changes.timeline:
        await _timeline(conn, changes)
    if changes.erased:
        for statement in _ERASE:
            await conn.execute(statement, _keys(sorted(changes.erased)))


async def _touch(conn: AsyncConnection, changes: BatchChanges) -> None:
    keys = sorted(changes.seen)
    rows = (
        {"workspace_id": k[0], "customer_id": k[1], "first_seen_at": v.first, "last_event_at": v.last}
        for k in keys
        for v in (changes.seen[k],)
    )
    await conn.execute(_TOUCH, {"rows": json_rows(rows)})


async def _profiles(conn: AsyncConnection, changes: BatchChanges) -> None:
    keys = sorted(changes.profiles)
    rows = [changes.profiles[k] for k in keys]
    params = _keys(keys) | {"at": [r.at for r in rows], "traits": [orjson.dumps(r.traits).decode() for r in rows]}
    for f in PROFILE_FIELDS:
        params[f] = [None if r.fields.get(f) is None else str(r.fields[f]) for r in rows]
    await conn.execute(_PROFILES, params)


async def _issues(conn: AsyncConnection, changes: BatchChanges) -> None:
    keys = sorted(changes.issues)
    rows = [changes.issues[k] for k in keys]
    params = _keys(keys) | {
        "kind": [k[2] for k in keys],
        "ref": [k[3] for k in keys],
        "reason": [r.reason_code for r in rows],
        "detail": [r.detail for r in rows],
        "opened": [r.opened_at for r in rows],
        "resolved": [r.resolved_at for r in rows],
    }
    await conn.execute(_ISSUES, params)


async def _opportunities(conn: AsyncConnection, changes: BatchChanges) -> None:
    keys = sorted(changes.opportunities)
    rows = [changes.opportunities[k] for k in keys]
    params = _keys(keys) | {
        "ids": [k[2] for k in keys],
        "amount": [_num(r.fields.get("amount")) for r in rows],
        "currency": [r.fields.get("currency") for r in rows],
        "probability": [_num(r.fields.get("probability")) for r in rows],
        "close": [_date(r.fields.get("expected_close")) for r in rows],
        "stage": [r.fields.get("stage") for r in rows],
        "state": [r.state for r in rows],
        "at": [r.at for r in rows],
    }
    await conn.execute(_OPPORTUNITIES, params)


async def _timeline(conn: AsyncConnection, changes: BatchChanges) -> None:
    names = ("workspace_id", "customer_id", "occurred_at", "event_id", "type", "summary")
    rows = (dict(zip(names, r, strict=True)) for r in sorted(changes.timeline, key=lambda r: (r[0], r[1], r[2], r[3])))
    await conn.execute(_TIMELINE, {"rows": json_rows(rows)})


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _date(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(str(value)[:10])
