"""The one order customer rows are locked in: workspace, then customer id, byte by byte.

Python's `sorted()` of the keys and `COLLATE "C"` agree on it. A statement that joins the keys
to `customer` locks rows in whatever order its plan produces them (a hash join, the table's
physical order), so sorting the keys passed in is not enough: every locking read ends in
`LOCKING_ORDER`, which puts the sort below the lock, and a batch that updates customers through
such a join takes its locks first with `lock_customers`. Consumer lanes, the sweep and the
portfolio run then wait for each other and never deadlock.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

LOCKING_ORDER = 'ORDER BY c.workspace_id COLLATE "C", c.customer_id COLLATE "C" FOR UPDATE OF c'

_LOCK = text(
    "SELECT 1 FROM customer c JOIN unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) AS k(ws, cs) "  # noqa: S608 - a constant
    "ON c.workspace_id = k.ws AND c.customer_id = k.cs " + LOCKING_ORDER
)


async def lock_customers(conn: AsyncConnection, keys: Collection[tuple[str, str]]) -> None:
    """Locks the existing rows of these customers, in the one order, until the transaction ends."""
    if keys:
        ordered = sorted(keys)
        await conn.execute(_LOCK, {"ws": [k[0] for k in ordered], "cs": [k[1] for k in ordered]})
