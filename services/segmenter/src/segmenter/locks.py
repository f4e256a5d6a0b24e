"""The one order customer rows are locked in: workspace, then customer id, byte by byte.

Python's `sorted()` of the keys and `COLLATE "C"` agree on it. A statement that joins the keys
to `customer` locks rows in whatever order its plan produces them (a hash join: the table's
physical order), so passing the keys sorted is not enough. Every locking read therefore takes its
keys sorted, numbered by `unnest(…) WITH ORDINALITY AS k(…, i)`, and ends in `LOCKING_ORDER`:
the usual plan, a nested loop over the keys, already yields that order and needs no sort (a sort
of these wide rows cost the sweep 8 %); any other plan gets a sort below the lock. A transaction
that locks customers in more than one step would still take a later step's smaller keys after an
earlier step's larger ones, so it locks all of them first with `lock_customers`. Consumer lanes,
the sweep, the portfolio run and a policy change then wait for each other and never deadlock.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

LOCKING_ORDER = "ORDER BY k.i FOR UPDATE OF c"

_LOCK = text(
    "SELECT 1 FROM customer c "  # noqa: S608 - a constant
    "JOIN unnest(CAST(:ws AS text[]), CAST(:cs AS text[])) WITH ORDINALITY AS k(ws, cs, i) "
    "ON c.workspace_id = k.ws AND c.customer_id = k.cs " + LOCKING_ORDER
)


async def lock_customers(conn: AsyncConnection, keys: Collection[tuple[str, str]]) -> None:
    """Locks the existing rows of these customers, in the one order, until the transaction ends."""
    if keys:
        ordered = sorted(keys)
        await conn.execute(_LOCK, {"ws": [k[0] for k in ordered], "cs": [k[1] for k in ordered]})
