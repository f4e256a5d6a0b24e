"""Re-evaluates customers' lifecycle under their workspace's policy, and records and publishes what
changed: one read and one write per batch, whatever changed.

Used after every consumed batch (for the customers it touched) and by the sweep (for customers
whose due time came); both call the same pure rules, so time and events agree on a status.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.db import json_rows
from cartera_common.outbox import OutMessage, emit
from segmenter.changes import CustomerKey, change_for
from segmenter.domain import reasons
from segmenter.domain.fold import Seen
from segmenter.domain.lifecycle import MAX_RECENT_ORDERS, Decision, Facts, evaluate
from segmenter.locks import LOCKING_ORDER
from segmenter.policy_store import VersionedPolicy, current_policies

# The customer as the rules and the snapshot need it; for `recount` customers also their orders'
# totals, recomputed from customer_order (orders count when completed and not cancelled) in one pass
# over them (the favourite category from the same rows, so each customer's orders are read once). Locked:
# the portfolio run and the sweep write these rows too, and `published` must not go stale between.
_READ = f"""
    SELECT c.workspace_id, c.customer_id, c.first_seen_at, c.last_event_at, c.cost_to_serve, c.first_order_at, c.last_order_at, c.recent_orders_at,
           c.order_count, c.revenue, c.margin, c.favourite_category, c.interest_at, c.interest_kind, c.industry,
           c.segment, c.p_alive, c.p_alive_at, c.winback_ended_at, c.contacted_at, c.responded_at, c.status,
           c.status_since, c.status_reason, c.due_at, c.policy_version, c.usual_gap_days, c.frequency, c.unhappy,
           c.leave_reasons, c.responsiveness, c.name, c.email, c.phone, c.locale, c.time_zone, c.tier, c.pareto,
           c.consent::text AS consent_json, c.published::text AS published_json, c.change_seq, k.recount,
           a.n, a.revenue AS a_revenue, a.margin AS a_margin, a.first_at, a.last_at, a.recent, a.favourite
    FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS boolean[])) WITH ORDINALITY AS k(ws, cs, recount, i)
    JOIN customer c ON c.workspace_id = k.ws AND c.customer_id = k.cs
    LEFT JOIN LATERAL (
        SELECT count(*) AS n, COALESCE(sum(o.amount - o.refunded), 0) AS revenue, sum(o.margin) AS margin,
               min(o.occurred_at) AS first_at, max(o.occurred_at) AS last_at,
               (array_agg(o.occurred_at ORDER BY o.occurred_at DESC))[1:{MAX_RECENT_ORDERS}] AS recent,
               (SELECT cat FROM jsonb_array_elements(jsonb_agg(o.categories) FILTER (WHERE o.categories IS NOT NULL))
                                AS l(cats), jsonb_array_elements_text(l.cats) AS cat
                GROUP BY cat ORDER BY count(*) DESC, cat LIMIT 1) AS favourite
        FROM customer_order o
        WHERE k.recount AND o.workspace_id = k.ws AND o.customer_id = k.cs AND o.completed AND NOT o.cancelled
    ) a ON k.recount
    {LOCKING_ORDER}
    """  # noqa: S608 - MAX_RECENT_ORDERS and LOCKING_ORDER are constants

_ISSUES = text(
    """
    SELECT i.workspace_id, i.customer_id, i.kind, i.ref, i.reason_code, i.opened_at, i.resolved_at
    FROM customer_issue i
    JOIN unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs)
      ON i.workspace_id = k.ws AND i.customer_id = k.cs
    """
)

# What a re-evaluation writes back, and each column's type in the JSON rows it travels in.
_WRITTEN = {
    "first_seen_at": "timestamptz", "last_event_at": "timestamptz", "cost_to_serve": "numeric", "order_count": "int", "revenue": "numeric", "margin": "numeric", "first_order_at": "timestamptz",
    "last_order_at": "timestamptz", "recent_orders_at": "timestamptz[]", "favourite_category": "text",
    "responded_at": "timestamptz", "status": "text", "status_since": "timestamptz", "status_reason": "text",
    "due_at": "timestamptz", "policy_version": "int", "usual_gap_days": "float8", "frequency": "text",
    "unhappy": "boolean", "leave_reasons": "text[]", "responsiveness": "text", "published": "jsonb",
    "change_seq": "int",
}  # fmt: skip

_OURS = ("status", "unhappy", "leave_reasons", "responsiveness")  # published fields this module sets
_COMPARED = [col for col in _WRITTEN if col not in ("published", "change_seq")]

_WRITE = text(
    "UPDATE customer c SET "  # noqa: S608 - built from the constants above
    + ", ".join(f"{col} = COALESCE(t.{col}, c.{col})" if col == "published" else f"{col} = t.{col}" for col in _WRITTEN)
    + ", updated_at = now() FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(workspace_id text, customer_id text, "
    + ", ".join(f"{col} {typ}" for col, typ in _WRITTEN.items())
    + ") WHERE c.workspace_id = t.workspace_id AND c.customer_id = t.customer_id"
)

_HISTORY = text(
    """
    INSERT INTO status_change (workspace_id, customer_id, from_status, to_status, at, reason, policy_version)
    SELECT * FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:from AS text[]), CAST(:to AS text[]),
                         CAST(:at AS timestamptz[]), CAST(:reason AS text[]), CAST(:version AS int[]))
    """
)


async def reevaluate(
    conn: AsyncConnection,
    keys: Sequence[CustomerKey],
    *,
    now: datetime,
    recount: Collection[CustomerKey] = (),
    seen: Mapping[CustomerKey, Seen] | None = None,
    publish: Collection[CustomerKey] = (),
    keep_early_due: bool = False,
) -> int:
    """Brings the given customers up to date and publishes whatever differs from what was last
    published; returns how many changed status. `recount`: customers whose orders changed, whose
    totals are recomputed first. `seen`: when a batch saw each customer and what it cost to serve
    them, merged here so a customer row is written once per batch. `publish`: customers whose
    profile or consent the batch changed; together with those whose status, unhappiness or
    responsiveness changes here, they are compared with what was last published (the others
    cannot differ, so their published snapshot is not even parsed). `keep_early_due`: leave a due
    time that is earlier than needed but still ahead (an order only ever postpones a lapse); the
    sweep then re-evaluates early and finds nothing to do, which is cheaper than moving an indexed
    column on every order."""
    if not keys:
        return 0
    keys = sorted(set(keys))
    rows = await _read(conn, keys, recount)
    policies = await current_policies(conn, {r["workspace_id"] for r in rows})
    current = [_with_totals(r, (seen or {}).get((r["workspace_id"], r["customer_id"]))) for r in rows]
    decided = [(r, evaluate(facts_of(r), policies[r["workspace_id"]].policy, now)) for r in current]
    gone = [(r["workspace_id"], r["customer_id"]) for r, d in decided if d.status in ("lapsed", "lost")]
    issues = await _issues(conn, gone)
    writes: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    messages: list[OutMessage] = []
    for before, (row, decision) in zip(rows, decided, strict=True):
        key = (row["workspace_id"], row["customer_id"])
        policy = policies[key[0]]
        after = row  # _with_totals' own copy, brought up to date in place: `before` stays as read
        after.update(_lifecycle(row, decision, issues.get(key, []), policy))
        if keep_early_due and decision.status == before["status"] and _earlier_still_due(before["due_at"], after, now):
            after["due_at"] = before["due_at"]
        change = None
        if before["published_json"] is None or key in publish or any(after[f] != before[f] for f in _OURS):
            after.update(_parsed(before))
            change = change_for(after, now=now)
        after["published"] = None  # COALESCE in _WRITE: keep what was published
        if change is not None:
            after["published"] = change.published
            after["change_seq"] = change.seq
            messages.append(change.message)
        if change is not None or any(after[c] != before[c] for c in _COMPARED):
            writes.append(after)
        if decision.status != before["status"]:
            history.append(
                {"ws": key[0], "cs": key[1], "from": before["status"], "to": decision.status,
                 "at": decision.since, "reason": decision.reason, "version": policy.version}
            )  # fmt: skip
    if writes:
        await conn.execute(_WRITE, {"rows": _rows(writes)})
    if history:
        await conn.execute(_HISTORY, {n: [h[n] for h in history] for n in history[0]})
    await emit(conn, messages)
    return len(history)


async def _read(
    conn: AsyncConnection, keys: Sequence[CustomerKey], recount: Collection[CustomerKey]
) -> list[Mapping[str, Any]]:
    """Straight through asyncpg, in the same transaction: this is the widest read of the hot path,
    and SQLAlchemy's row objects cost more than the query's own decoding. The records are
    returned as they are (read-only mappings); _with_totals makes the one copy that is changed."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    records: list[Mapping[str, Any]] = await driver.fetch(
        _READ, [k[0] for k in keys], [k[1] for k in keys], [k in recount for k in keys]
    )
    return records


def _earlier_still_due(stored: datetime | None, after: Mapping[str, Any], now: datetime) -> bool:
    due = after["due_at"]
    return stored is not None and due is not None and now < stored <= due


def _parsed(row: Mapping[Any, Any]) -> dict[str, Any]:
    published, consent = row["published_json"], row["consent_json"]
    return {"published": orjson.loads(published) if published else None, "consent": orjson.loads(consent)}


def _with_totals(row: Mapping[Any, Any], seen: Seen | None) -> dict[str, Any]:
    """The row with what the batch saw merged in, and its order totals recomputed when read with them."""
    r = dict(row)  # `row` stays as read: what changed is found by comparing the two
    if seen is not None:
        r["first_seen_at"] = min(r["first_seen_at"], seen.first)
        r["last_event_at"] = max(r["last_event_at"], seen.last)
        r["cost_to_serve"] = r["cost_to_serve"] + seen.cost
    if not r["recount"]:
        return r
    r |= {
        "order_count": r["n"],
        "revenue": r["a_revenue"],
        "margin": r["a_margin"],
        "first_order_at": r["first_at"],
        "last_order_at": r["last_at"],
        "recent_orders_at": list(r["recent"] or ()),
        "favourite_category": r["favourite"],
    }
    last, contacted = r["last_order_at"], r["contacted_at"]
    if last is not None and contacted is not None and contacted < last:
        r["responded_at"] = max(r["responded_at"] or last, last)  # bought after being contacted
    return r


def facts_of(row: Mapping[Any, Any]) -> Facts:
    return Facts(
        first_seen_at=row["first_seen_at"],
        order_times=tuple(sorted(row["recent_orders_at"] or ())),
        first_order_at=row["first_order_at"],
        interest_at=row["interest_at"],
        interest_kind=row["interest_kind"],
        industry=row["industry"],
        segment=row["segment"],
        p_alive=row["p_alive"],
        p_alive_at=row["p_alive_at"],
        winback_ended_at=row["winback_ended_at"],
    )


def _lifecycle(
    row: Mapping[Any, Any], d: Decision, issues: list[reasons.Issue], policy: VersionedPolicy
) -> dict[str, Any]:
    left = reasons.NONE
    if d.lapse_at is not None and d.status in ("lapsed", "lost"):
        window = policy.policy.unhappy_window_days
        left = reasons.leave_reasons(
            issues, last_order_at=row["last_order_at"], lapse_at=d.lapse_at, window_days=window
        )
    return {
        "status": d.status,
        "status_since": d.since,
        "status_reason": d.reason,
        "due_at": d.due_at,
        "policy_version": policy.version,
        "usual_gap_days": d.usual_gap_days,
        "frequency": d.frequency,
        "unhappy": left.unhappy,
        "leave_reasons": list(left.reasons),
        "responsiveness": reasons.responsiveness(
            contacted_at=row["contacted_at"], responded_at=row["responded_at"], last_order_at=row["last_order_at"]
        ),
    }


def _rows(writes: list[dict[str, Any]]) -> str:
    return json_rows(
        {"workspace_id": w["workspace_id"], "customer_id": w["customer_id"]}
        | {
            col: orjson.Fragment(w[col]) if col == "published" and isinstance(w[col], str) else w[col]
            for col in _WRITTEN
        }
        for w in writes
    )


async def _issues(conn: AsyncConnection, keys: list[CustomerKey]) -> dict[CustomerKey, list[reasons.Issue]]:
    out: dict[CustomerKey, list[reasons.Issue]] = {}
    if not keys:
        return out
    result = await conn.execute(_ISSUES, {"ws": [k[0] for k in keys], "cs": [k[1] for k in keys]})
    for r in result.mappings():
        issue = reasons.Issue(r["kind"], r["ref"], r["reason_code"], r["opened_at"], r["resolved_at"])
        out.setdefault((r["workspace_id"], r["customer_id"]), []).append(issue)
    return out
