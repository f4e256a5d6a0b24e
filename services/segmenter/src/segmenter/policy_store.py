"""Policy rows: each change is a new version, so every status change can name the policy behind it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from segmenter.domain.policy import DEFAULT_POLICY, Policy

_CURRENT = text(
    """
    SELECT DISTINCT ON (workspace_id) workspace_id, version, body, created_at, created_by
    FROM policy WHERE workspace_id = ANY(CAST(:ws AS text[]))
    ORDER BY workspace_id, version DESC
    """
)

_INSERT = text(
    """
    INSERT INTO policy (workspace_id, version, body, created_at, created_by)
    SELECT CAST(:ws AS text), COALESCE(max(version), 0) + 1, CAST(:body AS jsonb), CAST(:at AS timestamptz),
           CAST(:by AS text)
    FROM policy WHERE workspace_id = CAST(:ws AS text)
    RETURNING version
    """
)

# Due now: the sweep re-evaluates every customer of the workspace under the new policy, in chunks.
# Locked first in the one order (`locks`), which a plain UPDATE would not keep.
_REEVALUATE_ALL = text(
    """
    UPDATE customer c SET due_at = :now
    FROM (SELECT customer_id FROM customer
          WHERE workspace_id = :ws AND (due_at IS NULL OR due_at > :now)
          ORDER BY customer_id COLLATE "C" FOR UPDATE) AS l
    WHERE c.workspace_id = :ws AND c.customer_id = l.customer_id
    """
)


@dataclass(frozen=True, slots=True)
class VersionedPolicy:
    version: int  # 0: the built-in default, never stored
    policy: Policy
    created_at: datetime | None = None
    created_by: str | None = None


DEFAULT = VersionedPolicy(0, DEFAULT_POLICY)


async def current_policies(conn: AsyncConnection, workspaces: Iterable[str]) -> dict[str, VersionedPolicy]:
    """The current policy of each workspace; workspaces that never set one get the default."""
    wanted = sorted(set(workspaces))
    found = dict.fromkeys(wanted, DEFAULT)
    for row in (await conn.execute(_CURRENT, {"ws": wanted})).mappings():
        found[row["workspace_id"]] = VersionedPolicy(
            row["version"], Policy.model_validate(row["body"]), row["created_at"], row["created_by"]
        )
    return found


async def save_policy(conn: AsyncConnection, workspace_id: str, policy: Policy, *, now: datetime, by: str) -> int:
    """Stores a new version and marks the whole workspace due, so the sweep re-evaluates it."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('policy:' || :ws))"), {"ws": workspace_id})
    body = orjson.dumps(policy.model_dump(mode="json")).decode()
    version: int = (await conn.execute(_INSERT, {"ws": workspace_id, "body": body, "at": now, "by": by})).scalar_one()
    await conn.execute(_REEVALUATE_ALL, {"ws": workspace_id, "now": now})
    return version
