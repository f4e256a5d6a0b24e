"""A workspace's scoring rules: the current version, or the defaults until it sets its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from scoring.domain.rules import DEFAULT_RULES, ScoringRules

_CURRENT = text("SELECT version, body, updated_at, updated_by FROM scoring_rules WHERE workspace_id = :ws")

_SAVE = text(
    """
    INSERT INTO scoring_rules AS r (workspace_id, version, body, updated_at, updated_by)
    VALUES (:ws, 1, CAST(:body AS jsonb), :at, :by)
    ON CONFLICT (workspace_id) DO UPDATE
    SET version = r.version + 1, body = EXCLUDED.body, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
    RETURNING version
    """
)


@dataclass(frozen=True, slots=True)
class VersionedRules:
    version: int  # 0: the built-in defaults, never stored
    rules: ScoringRules
    updated_at: datetime | None = None
    updated_by: str | None = None


DEFAULT = VersionedRules(0, DEFAULT_RULES)


async def current_rules(conn: AsyncConnection, workspace_id: str) -> VersionedRules:
    row = (await conn.execute(_CURRENT, {"ws": workspace_id})).mappings().first()
    if row is None:
        return DEFAULT
    return VersionedRules(
        row["version"], ScoringRules.model_validate(row["body"]), row["updated_at"], row["updated_by"]
    )


async def save_rules(conn: AsyncConnection, workspace_id: str, rules: ScoringRules, *, now: datetime, by: str) -> int:
    body = orjson.dumps(rules.model_dump(mode="json")).decode()
    params = {"ws": workspace_id, "body": body, "at": now, "by": by}
    return int((await conn.execute(_SAVE, params)).scalar_one())
