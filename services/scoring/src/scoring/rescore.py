"""Rescores customers with the workspace's current fit and rules, and publishes what changed.

`rescore` runs in the consumers' transactions for the customers a batch touched; `rescore_workspace`
runs after a refit or a change of rules for everyone, and first recomputes the workspace's
thresholds and top-customer profile. Both go through the same pure `domain.scorecard`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.db import json_rows
from cartera_common.events.changes import SCORES_UPDATED
from cartera_common.events.envelope import derived_envelope
from cartera_common.outbox import OutMessage, emit
from cartera_common.topics import SCORES
from scoring.customers import load_customers
from scoring.domain import leads, scorecard
from scoring.domain.bgnbd import BgNbdParams
from scoring.domain.fold import CustomerKey
from scoring.domain.gamma_gamma import GammaGammaParams
from scoring.domain.leads import TopProfile
from scoring.domain.quadrants import Thresholds
from scoring.domain.scorecard import Context
from scoring.rules_store import current_rules

_CHUNK = 20_000

# The newest BG/NBD fit, and the Gamma-Gamma fit stored with it (a refit with too few repeat buyers has none).
_FITS = text(
    """
    SELECT DISTINCT ON (kind) id, kind, params FROM model_fit
    WHERE workspace_id = :ws ORDER BY kind, id DESC
    """
)
_STATS = text("SELECT * FROM workspace_stats WHERE workspace_id = :ws")
_STORE_STATS = text(
    """
    INSERT INTO workspace_stats AS s (workspace_id, computed_at, value_threshold, potential_threshold, repeat_rate,
                                      top_profile)
    VALUES (:ws, :at, :value, :potential, :repeat, CAST(:top AS jsonb))
    ON CONFLICT (workspace_id) DO UPDATE
    SET computed_at = EXCLUDED.computed_at, value_threshold = EXCLUDED.value_threshold,
        potential_threshold = EXCLUDED.potential_threshold, repeat_rate = EXCLUDED.repeat_rate,
        top_profile = EXCLUDED.top_profile
    """
)
_OLD = "SELECT customer_id, published, publish_seq FROM score WHERE workspace_id = $1 {ids}"

# Column → PostgreSQL type, for the one-statement upsert.
_COLUMNS = {
    "workspace_id": "text", "customer_id": "text", "p_alive": "float8", "expected_30": "float8",
    "expected_90": "float8", "expected_365": "float8", "expected_order_value": "float8", "clv": "float8",
    "fallback": "boolean", "fit_id": "bigint", "scored_at": "timestamptz", "next_purchase_at": "timestamptz", "value_now": "float8", "quadrant": "text",
    "quadrant_reason": "text", "winback_worth": "boolean", "winback_intensity": "text", "p_reactivation": "float8",
    "predicted_value": "float8", "expected_return": "float8", "winback_cost": "float8", "lead_score": "float8",
    "lead_fit": "float8", "lead_engagement": "float8", "lookalike": "float8", "channel": "text",
    "published": "jsonb", "publish_seq": "int",
}  # fmt: skip
_WRITE = text(
    f"""
    INSERT INTO score ({", ".join(_COLUMNS)})
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t({", ".join(f"{c} {t}" for c, t in _COLUMNS.items())})
    ON CONFLICT (workspace_id, customer_id) DO UPDATE
    SET {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS if c not in ("workspace_id", "customer_id"))}
    """  # noqa: S608 - the columns are constants
)
# What `scores_updated` carries (ScoresUpdated's fields, plus the numbers behind the win-back).
_PAYLOAD = ("p_alive", "expected_30", "expected_90", "expected_365", "expected_order_value", "clv", "fallback",
            "fit_id", "quadrant", "winback_worth", "winback_intensity", "lead_score", "channel")  # fmt: skip
_PAYLOAD_EXTRA = {"expected_return": "winback_expected_return", "winback_cost": "winback_cost"}


async def load_context(conn: AsyncConnection, ws: str) -> Context:
    """The workspace's newest fit, its rules and its statistics."""
    fits = {r["kind"]: r for r in (await conn.execute(_FITS, {"ws": ws})).mappings()}
    found = (await conn.execute(_STATS, {"ws": ws})).mappings().first()
    stats: dict[str, Any] = dict(found) if found is not None else {}
    purchases = fits.get("bgnbd")
    spend = fits.get("gamma_gamma")
    if purchases is None or (spend is not None and spend["id"] < purchases["id"]):
        spend = None
    value, potential = stats.get("value_threshold"), stats.get("potential_threshold")
    return Context(
        rules=(await current_rules(conn, ws)).rules,
        fit_id=None if purchases is None else purchases["id"],
        purchases=None if purchases is None else BgNbdParams(**purchases["params"]),
        spend=None if spend is None else GammaGammaParams(**spend["params"]),
        thresholds=None if value is None or potential is None else Thresholds(value, potential),
        top=TopProfile.from_json(stats.get("top_profile")),
        repeat_rate=stats.get("repeat_rate"),
        lapsed=int(stats.get("lapsed") or 0),
        returned=int(stats.get("returned") or 0),
        winbacks=int(stats.get("winbacks") or 0),
        winbacks_won=int(stats.get("winbacks_won") or 0),
    )


async def rescore(conn: AsyncConnection, keys: Iterable[CustomerKey], *, now: datetime) -> int:
    """Rescores these customers, vectorised per workspace; returns how many `scores_updated` were staged."""
    by_workspace: dict[str, list[str]] = defaultdict(list)
    for ws, cid in sorted(set(keys)):
        by_workspace[ws].append(cid)
    published = 0
    for ws, ids in by_workspace.items():
        ctx = await load_context(conn, ws)
        customers = await load_customers(conn, ws, now, ids)
        rows = scorecard.decide(customers, scorecard.values(customers, ctx), ctx, now=now)
        published += await _write(conn, ws, rows, ids, now)
    return published


async def rescore_workspace(conn: AsyncConnection, ws: str, *, now: datetime) -> int:
    """Recomputes the workspace's thresholds and top-customer profile, then rescores every customer."""
    ctx = await load_context(conn, ws)
    customers = await load_customers(conn, ws, now)
    values = scorecard.values(customers, ctx)
    top = scorecard.top_customers(customers, values).tolist()
    ctx = dataclasses.replace(
        ctx,
        thresholds=scorecard.workspace_thresholds(customers, values, ctx.rules) if ctx.purchases else None,
        top=leads.top_profile(
            [p for p, t in zip(customers.profiles, top, strict=True) if t], ctx.rules.leads.lookalike
        ),
        repeat_rate=scorecard.repeat_rate(customers),
    )
    await conn.execute(
        _STORE_STATS,
        {
            "ws": ws, "at": now, "value": ctx.thresholds.value if ctx.thresholds else None,
            "potential": ctx.thresholds.potential if ctx.thresholds else None, "repeat": ctx.repeat_rate,
            "top": orjson.dumps(ctx.top.to_json()).decode(),
        },
    )  # fmt: skip
    rows = scorecard.decide(customers, values, ctx, now=now)
    return await _write(conn, ws, rows, None, now)


async def _write(
    conn: AsyncConnection, ws: str, rows: list[dict[str, Any]], ids: Sequence[str] | None, now: datetime
) -> int:
    """Stores the rows; stages `scores_updated` for those whose change is worth telling."""
    raw = await conn.get_raw_connection()
    narrow = "" if ids is None else "AND customer_id = ANY($2::text[])"
    params = (ws,) if ids is None else (ws, list(ids))
    old = {
        r["customer_id"]: (r["published"], r["publish_seq"])
        for r in await raw.driver_connection.fetch(_OLD.format(ids=narrow), *params)  # type: ignore[union-attr]
    }
    messages = []
    for row in rows:
        row["workspace_id"] = ws
        before, seq = old.get(row["customer_id"], (None, 0))
        after = scorecard.view(row)
        if scorecard.worth_publishing(before, after):
            seq += 1
            before = after
            messages.append(_message(ws, row, seq, now))
        row["published"], row["publish_seq"] = before, seq
    for start in range(0, len(rows), _CHUNK):
        await conn.execute(_WRITE, {"rows": json_rows(rows[start : start + _CHUNK])})
    await emit(conn, messages)
    return len(messages)


def _message(ws: str, row: dict[str, Any], seq: int, now: datetime) -> OutMessage:
    payload = {k: row[k] for k in _PAYLOAD} | {name: row[k] for k, name in _PAYLOAD_EXTRA.items()}
    # Named by sequence and content: a retried transaction stages the same id, a concurrent one another.
    digest = hashlib.sha1(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), usedforsecurity=False).hexdigest()
    envelope = derived_envelope(
        SCORES_UPDATED, workspace_id=ws, customer_id=row["customer_id"], payload=payload, at=now, source="scoring",
        identity=f"score:{seq}:{digest[:16]}",
    )  # fmt: skip
    return OutMessage.of(SCORES, envelope)
