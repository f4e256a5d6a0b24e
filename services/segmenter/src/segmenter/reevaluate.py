"""Re-evaluates customers' lifecycle under their workspace's policy and records what changed.

Used after every consumed batch (for the customers it touched) and by the sweep (for customers
whose due time came); both call the same pure rules, so time and events agree on a status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.db import text_array_literal
from segmenter.changes import CustomerKey, publish_changes
from segmenter.domain import reasons
from segmenter.domain.lifecycle import Decision, Facts, evaluate
from segmenter.policy_store import current_policies

_FACTS = text(
    """
    SELECT c.workspace_id, c.customer_id, c.first_seen_at, c.first_order_at, c.last_order_at, c.recent_orders_at,
           c.interest_at, c.interest_kind, c.industry, c.segment, c.p_alive, c.p_alive_at, c.winback_ended_at,
           c.contacted_at, c.responded_at, c.status, c.status_since, c.status_reason, c.due_at, c.policy_version,
           c.usual_gap_days, c.frequency, c.unhappy, c.leave_reasons, c.responsiveness
    FROM customer c
    JOIN unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs)
      ON c.workspace_id = k.ws AND c.customer_id = k.cs
    """
)

_ISSUES = text(
    """
    SELECT i.workspace_id, i.customer_id, i.kind, i.ref, i.reason_code, i.opened_at, i.resolved_at
    FROM customer_issue i
    JOIN unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs)
      ON i.workspace_id = k.ws AND i.customer_id = k.cs
    """
)

_WRITE = text(
    """
    UPDATE customer c
    SET status = t.status, status_since = t.since, status_reason = t.reason, due_at = t.due,
        policy_version = t.version, usual_gap_days = t.gap, frequency = t.frequency, unhappy = t.unhappy,
        leave_reasons = COALESCE(CAST(NULLIF(t.reasons, '') AS text[]), '{}'), responsiveness = t.responsiveness, updated_at = now()
    FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:status AS text[]), CAST(:since AS timestamptz[]),
                CAST(:reason AS text[]), CAST(:due AS timestamptz[]), CAST(:version AS int[]),
                CAST(:gap AS float8[]), CAST(:frequency AS text[]), CAST(:unhappy AS boolean[]),
                CAST(:reasons AS text[]), CAST(:responsiveness AS text[]))
         AS t(ws, cs, status, since, reason, due, version, gap, frequency, unhappy, reasons, responsiveness)
    WHERE c.workspace_id = t.ws AND c.customer_id = t.cs
    """
)

_HISTORY = text(
    """
    INSERT INTO status_change (workspace_id, customer_id, from_status, to_status, at, reason, policy_version)
    SELECT * FROM unnest(CAST(:ws AS text[]), CAST(:cs AS text[]), CAST(:from AS text[]), CAST(:to AS text[]),
                         CAST(:at AS timestamptz[]), CAST(:reason AS text[]), CAST(:version AS int[]))
    """
)

_PUBLISHED = ("status", "unhappy", "reasons", "responsiveness")  # the ones customer-changes carries as changes
_COLUMNS = ("status", "since", "reason", "due", "version", "gap", "frequency", "unhappy", "reasons", "responsiveness")


async def reevaluate(
    conn: AsyncConnection, keys: Sequence[CustomerKey], *, now: datetime, publish: Iterable[CustomerKey] = ()
) -> int:
    """Brings the given customers' lifecycle up to date; returns how many changed status.

    Publishes the customers whose published fields it changed, plus `publish` (those whose profile
    or consent the caller changed); everyone else's snapshot is left unread.
    """
    if not keys:
        return 0
    keys = sorted(set(keys))
    params = {"ws": [k[0] for k in keys], "cs": [k[1] for k in keys]}
    rows = (await conn.execute(_FACTS, params)).mappings().all()
    policies = await current_policies(conn, {r["workspace_id"] for r in rows})
    decided = [(row, evaluate(facts_of(row), policies[row["workspace_id"]].policy, now)) for row in rows]
    gone = [(r["workspace_id"], r["customer_id"]) for r, d in decided if d.status in ("lapsed", "lost")]
    issues = await _issues(conn, gone)
    updates: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    candidates = set(publish)
    for row, decision in decided:
        key = (row["workspace_id"], row["customer_id"])
        version = policies[key[0]].version
        new = _columns(row, decision, issues.get(key, []), version, policies[key[0]].policy.unhappy_window_days)
        stored = _stored(row)
        if new != stored:
            updates.append({"ws": key[0], "cs": key[1], **new})
            if any(new[c] != stored[c] for c in _PUBLISHED):
                candidates.add(key)
        if decision.status != row["status"]:
            history.append(
                {"ws": key[0], "cs": key[1], "from": row["status"], "to": decision.status,
                 "at": decision.since, "reason": decision.reason, "version": version}
            )  # fmt: skip
    if updates:
        await conn.execute(_WRITE, _columnar(updates, ("ws", "cs", *_COLUMNS)))
    if history:
        await conn.execute(_HISTORY, _columnar(history, ("ws", "cs", "from", "to", "at", "reason", "version")))
    await publish_changes(conn, sorted(candidates), now=now)
    return len(history)


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


def _columns(
    row: Mapping[Any, Any], d: Decision, issues: list[reasons.Issue], version: int, window_days: int
) -> dict[str, Any]:
    left = reasons.NONE
    if d.lapse_at is not None and d.status in ("lapsed", "lost"):
        left = reasons.leave_reasons(
            issues, last_order_at=row["last_order_at"], lapse_at=d.lapse_at, window_days=window_days
        )
    responsiveness = reasons.responsiveness(
        contacted_at=row["contacted_at"], responded_at=row["responded_at"], last_order_at=row["last_order_at"]
    )
    return {
        "status": d.status,
        "since": d.since,
        "reason": d.reason,
        "due": d.due_at,
        "version": version,
        "gap": d.usual_gap_days,
        "frequency": d.frequency,
        "unhappy": left.unhappy,
        "reasons": text_array_literal(left.reasons),
        "responsiveness": responsiveness,
    }


def _stored(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "status": row["status"],
        "since": row["status_since"],
        "reason": row["status_reason"],
        "due": row["due_at"],
        "version": row["policy_version"],
        "gap": row["usual_gap_days"],
        "frequency": row["frequency"],
        "unhappy": row["unhappy"],
        "reasons": text_array_literal(row["leave_reasons"] or ()),
        "responsiveness": row["responsiveness"],
    }


async def _issues(conn: AsyncConnection, keys: list[CustomerKey]) -> dict[CustomerKey, list[reasons.Issue]]:
    out: dict[CustomerKey, list[reasons.Issue]] = {}
    if not keys:
        return out
    result = await conn.execute(_ISSUES, {"ws": [k[0] for k in keys], "cs": [k[1] for k in keys]})
    for r in result.mappings():
        issue = reasons.Issue(r["kind"], r["ref"], r["reason_code"], r["opened_at"], r["resolved_at"])
        out.setdefault((r["workspace_id"], r["customer_id"]), []).append(issue)
    return out


def _columnar(rows: list[dict[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    return {n: [r[n] for r in rows] for n in names}
