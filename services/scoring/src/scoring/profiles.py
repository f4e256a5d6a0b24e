"""Writes what scoring learns beyond the orders: profiles, daily activity, standings, comebacks, erasures.

Set-based: one statement per kind of row for the whole batch, keys sorted so two consumers take
row locks in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.db import json_rows
from scoring.domain.fold import Changes, CustomerKey, ProfilePatch, Signals

_NOTHING = ProfilePatch()

# A key-only row (activity without a profile) makes the customer known; fields present change, traits merge.
_PROFILES = text(
    """
    INSERT INTO customer_profile AS p (workspace_id, customer_id, industry, company_size, region, country, traits)
    SELECT workspace_id, customer_id, industry, company_size, region, country, COALESCE(traits, '{}')
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(workspace_id text, customer_id text, industry text,
                                                       company_size text, region text, country text, traits jsonb)
    ON CONFLICT (workspace_id, customer_id) DO UPDATE
    SET industry = COALESCE(EXCLUDED.industry, p.industry), company_size = COALESCE(EXCLUDED.company_size, p.company_size),
        region = COALESCE(EXCLUDED.region, p.region), country = COALESCE(EXCLUDED.country, p.country),
        traits = p.traits || EXCLUDED.traits
    WHERE num_nonnulls(EXCLUDED.industry, EXCLUDED.company_size, EXCLUDED.region, EXCLUDED.country) > 0
       OR EXCLUDED.traits <> '{}'
    """
)

_ACTIVITY = text(
    """
    INSERT INTO customer_activity AS a (workspace_id, customer_id, kind, day, count, amount)
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS t(workspace_id text, customer_id text, kind text, day date, count int, amount numeric)
    ON CONFLICT (workspace_id, customer_id, kind, day) DO UPDATE
    SET count = a.count + EXCLUDED.count, amount = a.amount + EXCLUDED.amount
    """
)

# The newest standing wins whatever the arrival order; industry and segment only when known.
_STANDINGS = text(
    """
    INSERT INTO customer_profile AS p (workspace_id, customer_id, status, tier, pareto, industry, segment, standing_at)
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS t(workspace_id text, customer_id text, status text, tier text, pareto boolean, industry text,
             segment text, standing_at timestamptz)
    ON CONFLICT (workspace_id, customer_id) DO UPDATE
    SET status = EXCLUDED.status, tier = EXCLUDED.tier, pareto = EXCLUDED.pareto,
        industry = COALESCE(EXCLUDED.industry, p.industry), segment = COALESCE(EXCLUDED.segment, p.segment),
        standing_at = EXCLUDED.standing_at
    WHERE p.standing_at IS NULL OR EXCLUDED.standing_at >= p.standing_at
    """
)

_COMEBACKS = text(
    """
    INSERT INTO workspace_stats AS s (workspace_id, lapsed, returned)
    SELECT * FROM unnest(CAST(:ws AS text[]), CAST(:lapsed AS bigint[]), CAST(:returned AS bigint[]))
    ON CONFLICT (workspace_id) DO UPDATE SET lapsed = s.lapsed + EXCLUDED.lapsed, returned = s.returned + EXCLUDED.returned
    """
)

_WINBACKS = text(
    """
    INSERT INTO workspace_stats AS s (workspace_id, winbacks, winbacks_won)
    SELECT * FROM unnest(CAST(:ws AS text[]), CAST(:tried AS bigint[]), CAST(:won AS bigint[]))
    ON CONFLICT (workspace_id) DO UPDATE
        SET winbacks = s.winbacks + EXCLUDED.winbacks, winbacks_won = s.winbacks_won + EXCLUDED.winbacks_won
    """
)


async def count_winbacks(conn: AsyncConnection, tried: Mapping[str, int], won: Mapping[str, int]) -> None:
    """Adds a batch's ended win-backs to each workspace's record (the inbox keeps a replay from counting twice)."""
    workspaces = sorted(tried)
    if workspaces:
        params = {"ws": workspaces, "tried": [tried[w] for w in workspaces], "won": [won.get(w, 0) for w in workspaces]}
        await conn.execute(_WINBACKS, params)


_ERASE = [
    text(
        f"""
        DELETE FROM {table} t USING unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs)
        WHERE t.workspace_id = k.ws AND t.customer_id = k.cs
        """  # noqa: S608 - table names are constants
    )
    for table in ("customer_order", "customer_activity", "customer_profile", "score")
]


async def write_signals(conn: AsyncConnection, s: Signals) -> None:
    """Profiles and activity of a batch of `events`; erased customers are forgotten last."""
    keys = sorted(s.touched | s.profiles.keys())
    if keys:
        rows = (
            {"workspace_id": k[0], "customer_id": k[1], **p.fields, "traits": p.traits or None}
            for k in keys
            for p in (s.profiles.get(k, _NOTHING),)
        )
        await conn.execute(_PROFILES, {"rows": json_rows(rows)})
    if s.activity:
        activity = (
            {"workspace_id": k[0], "customer_id": k[1], "kind": k[2], "day": k[3], "count": a.count, "amount": a.amount}
            for k in sorted(s.activity)
            for a in (s.activity[k],)
        )
        await conn.execute(_ACTIVITY, {"rows": json_rows(activity)})
    if s.erased:
        await erase(conn, sorted(s.erased))


async def write_changes(conn: AsyncConnection, c: Changes) -> None:
    """Standings and the workspaces' comeback counts, from a batch of `customer-changes`."""
    if c.standings:
        rows = (
            {"workspace_id": k[0], "customer_id": k[1], "status": st.status, "tier": st.tier, "pareto": st.pareto,
             "industry": st.industry, "segment": st.segment, "standing_at": st.at}
            for k in sorted(c.standings)
            for st in (c.standings[k],)
        )  # fmt: skip
        await conn.execute(_STANDINGS, {"rows": json_rows(rows)})
    counted = sorted(ws for ws in c.lapsed.keys() | c.returned.keys() if c.lapsed[ws] or c.returned[ws])
    if counted:
        params = {"ws": counted, "lapsed": [c.lapsed[w] for w in counted], "returned": [c.returned[w] for w in counted]}
        await conn.execute(_COMEBACKS, params)


async def erase(conn: AsyncConnection, keys: list[CustomerKey]) -> None:
    """Right to erasure: the customer's orders, activity, profile and scores go."""
    params = {"ws": [k[0] for k in keys], "cs": [k[1] for k in keys]}
    for statement in _ERASE:
        await conn.execute(statement, params)
