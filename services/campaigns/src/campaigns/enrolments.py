"""Enrolments in PostgreSQL: the machine's frozen values in and out of rows.

An enrolment row is also its timer (`due_at`, indexed while active), so storing the enrolment
and arming its timer are one write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, cast

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns.domain.model import Credit, Enrolment, Happened, Outcome, State
from cartera_common.db import json_rows

CustomerKey = tuple[str, str]

COLUMNS = (
    "enrolment_id, workspace_id, campaign_id, customer_id, cycle, control, priority, enrolled_at, step, due_at, "
    "state, responded, outcome, ended_at, credit, path, traceparent"
)

_SAVE = text(
    """
    INSERT INTO enrolment (enrolment_id, workspace_id, campaign_id, customer_id, cycle, control, priority,
                           enrolled_at, step, due_at, state, responded, outcome, ended_at, credit, path, traceparent)
    SELECT enrolment_id, workspace_id, campaign_id, customer_id, cycle, control, priority, enrolled_at, step,
           due_at, state, responded, outcome, ended_at, credit, path, traceparent
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(
        enrolment_id text, workspace_id text, campaign_id text, customer_id text, cycle int, control bool,
        priority int, enrolled_at timestamptz, step int, due_at timestamptz, state text, responded bool,
        outcome text, ended_at timestamptz, credit jsonb, path jsonb, traceparent text)
    ON CONFLICT (enrolment_id) DO UPDATE SET
        step = EXCLUDED.step, due_at = EXCLUDED.due_at, state = EXCLUDED.state, responded = EXCLUDED.responded,
        outcome = EXCLUDED.outcome, ended_at = EXCLUDED.ended_at, credit = EXCLUDED.credit, path = EXCLUDED.path
    """
)


def to_row(e: Enrolment, *, cycle: int, priority: int, traceparent: str | None = None) -> dict[str, object]:
    return {
        "traceparent": traceparent,
        "enrolment_id": e.id,
        "workspace_id": e.workspace_id,
        "campaign_id": e.campaign_id,
        "customer_id": e.customer_id,
        "cycle": cycle,
        "control": e.control,
        "priority": priority,
        "enrolled_at": e.enrolled_at,
        "step": e.step,
        "due_at": e.due_at,
        "state": e.state,
        "responded": e.responded,
        "outcome": e.outcome,
        "ended_at": e.ended_at,
        "credit": asdict(e.credit) if e.credit is not None else None,
        "path": [_happened_json(h) for h in e.path],
    }


def from_row(row: Mapping[Any, Any]) -> Enrolment:
    credit = row["credit"]
    return Enrolment(
        id=row["enrolment_id"],
        workspace_id=row["workspace_id"],
        campaign_id=row["campaign_id"],
        customer_id=row["customer_id"],
        control=row["control"],
        enrolled_at=row["enrolled_at"],
        step=row["step"],
        due_at=row["due_at"],
        state=cast(State, row["state"]),
        responded=row["responded"],
        outcome=cast(Outcome | None, row["outcome"]),
        ended_at=row["ended_at"],
        credit=Credit(**credit) if credit else None,
        path=tuple(_happened(h) for h in row["path"]),
    )


def _happened_json(h: Happened) -> dict[str, object]:
    out = {k: v for k, v in asdict(h).items() if v is not None and v != ""}
    out["at"] = h.at.isoformat()
    return out


def _happened(raw: Mapping[str, Any]) -> Happened:
    return Happened(
        at=datetime.fromisoformat(raw["at"]),
        kind=raw["kind"],
        step=raw.get("step"),
        variant=raw.get("variant"),
        message_id=raw.get("message_id"),
        coupon=raw.get("coupon"),
        detail=raw.get("detail", ""),
    )


async def save(conn: AsyncConnection, rows: Sequence[Mapping[str, object]]) -> None:
    if rows:
        await conn.execute(_SAVE, {"rows": json_rows(rows)})


async def of_customers(
    conn: AsyncConnection, keys: Iterable[CustomerKey], *, active_only: bool = False, lock: bool = False
) -> list[Mapping[Any, Any]]:
    """The rows of these customers' enrolments, oldest first per customer: one order for every path that
    locks them, so two paths never wait on each other crosswise."""
    keys = sorted(set(keys))
    if not keys:
        return []
    sql = f"""
        SELECT {COLUMNS} FROM enrolment e
        JOIN unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs)
          ON e.workspace_id = k.ws AND e.customer_id = k.cs
        {"WHERE e.state = 'active'" if active_only else ""}
        ORDER BY e.workspace_id, e.customer_id, e.enrolled_at, e.enrolment_id
        {"FOR UPDATE OF e" if lock else ""}
    """  # noqa: S608 - only the constant column list and fixed clauses are formatted in
    result = await conn.execute(text(sql), {"ws": [k[0] for k in keys], "cs": [k[1] for k in keys]})
    return list(result.mappings())


async def history(
    conn: AsyncConnection, keys: Iterable[CustomerKey], *, lock: bool = False
) -> dict[CustomerKey, list[tuple[Enrolment, int]]]:
    """Every enrolment of these customers with its cycle, oldest first; `lock` holds their rows."""
    found: dict[CustomerKey, list[tuple[Enrolment, int]]] = defaultdict(list)
    for row in await of_customers(conn, keys, lock=lock):
        found[(row["workspace_id"], row["customer_id"])].append((from_row(row), row["cycle"]))
    return found
