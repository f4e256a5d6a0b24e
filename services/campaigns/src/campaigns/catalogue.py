"""A workspace's campaigns, templates and pacing: the ready-made ones from code, its own from tables.

Ready-made campaigns are enabled in every workspace until it switches one off; a workspace that
never edited one keeps getting the product's current definition.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns.domain.model import Campaign
from campaigns.domain.pacing import DEFAULT_PACING, PacingRules
from campaigns.domain.sequences import READY_MADE


@dataclass(frozen=True, slots=True)
class Listed:
    campaign: Campaign
    enabled: bool
    ready_made: bool
    customised: bool
    version: int
    updated_at: datetime | None


_ROWS = text(
    """
    SELECT workspace_id, campaign_id, definition, enabled, version, updated_at FROM campaign
    WHERE workspace_id = ANY(CAST(:ws AS text[]))
    """
)


async def listed(conn: AsyncConnection, workspaces: Iterable[str]) -> dict[str, dict[str, Listed]]:
    """Every campaign of each workspace, enabled or not, ready-made first."""
    wanted = sorted(set(workspaces))
    out: dict[str, dict[str, Listed]] = {
        ws: {cid: Listed(c, True, True, False, 0, None) for cid, c in READY_MADE.items()} for ws in wanted
    }
    for r in (await conn.execute(_ROWS, {"ws": wanted})).mappings():
        cid = r["campaign_id"]
        ready = cid in READY_MADE
        definition = Campaign.model_validate(r["definition"]) if r["definition"] else READY_MADE.get(cid)
        if definition is None:
            continue
        out[r["workspace_id"]][cid] = Listed(
            definition, r["enabled"], ready, r["definition"] is not None, r["version"], r["updated_at"]
        )
    return out


async def enabled(conn: AsyncConnection, workspaces: Iterable[str]) -> dict[str, dict[str, Campaign]]:
    return {
        ws: {cid: item.campaign for cid, item in found.items() if item.enabled}
        for ws, found in (await listed(conn, workspaces)).items()
    }


async def every(conn: AsyncConnection, workspaces: Iterable[str]) -> dict[str, dict[str, Campaign]]:
    """Disabled ones too: an enrolment already running finishes the campaign it started in."""
    return {
        ws: {cid: item.campaign for cid, item in found.items()}
        for ws, found in (await listed(conn, workspaces)).items()
    }


async def save(
    conn: AsyncConnection,
    workspace_id: str,
    campaign: Campaign | None,
    *,
    campaign_id: str,
    enabled: bool,
    at: datetime,
    by: str,
) -> int:
    """Stores a definition (None keeps the ready-made one) and switch; returns the new version."""
    row = await conn.execute(
        text(
            """
            INSERT INTO campaign (workspace_id, campaign_id, definition, enabled, version, updated_at, updated_by)
            VALUES (:ws, :cid, CAST(:definition AS jsonb), :enabled, 1, :at, :by)
            ON CONFLICT (workspace_id, campaign_id) DO UPDATE SET
                definition = COALESCE(EXCLUDED.definition, campaign.definition), enabled = EXCLUDED.enabled,
                version = campaign.version + 1, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
            RETURNING version
            """
        ),
        {
            "ws": workspace_id,
            "cid": campaign_id,
            "definition": campaign.model_dump_json() if campaign is not None else None,
            "enabled": enabled,
            "at": at,
            "by": by,
        },
    )
    return int(row.scalar_one())


async def pacing(conn: AsyncConnection, workspaces: Iterable[str]) -> dict[str, PacingRules]:
    wanted = sorted(set(workspaces))
    out = dict.fromkeys(wanted, DEFAULT_PACING)
    rows = await conn.execute(
        text("SELECT workspace_id, rules FROM pacing WHERE workspace_id = ANY(CAST(:ws AS text[]))"), {"ws": wanted}
    )
    for ws, rules in rows:
        out[ws] = PacingRules.model_validate(rules)
    return out


async def save_pacing(conn: AsyncConnection, workspace_id: str, rules: PacingRules, at: datetime) -> None:
    await conn.execute(
        text(
            """
            INSERT INTO pacing (workspace_id, rules, updated_at) VALUES (:ws, CAST(:rules AS jsonb), :at)
            ON CONFLICT (workspace_id) DO UPDATE SET rules = EXCLUDED.rules, updated_at = EXCLUDED.updated_at
            """
        ),
        {"ws": workspace_id, "rules": rules.model_dump_json(), "at": at},
    )
