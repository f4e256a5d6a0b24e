"""What the database's sessions were doing during a phase: working, waiting on a lock or on the disk,
or idle inside a transaction while the service's own process is busy elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import asyncpg

from bench.cpu import CpuMeter
from cartera_common.settings import libpq_url

_ACTIVITY = """
SELECT application_name AS app, state,
       coalesce(wait_event_type || ':' || wait_event, 'on cpu') AS wait
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'
"""

_MAINTENANCE = """
SELECT coalesce(nullif(query, ''), backend_type) AS what FROM pg_stat_activity
WHERE backend_type = 'autovacuum worker'
"""


class WaitSampler:
    """Samples pg_stat_activity every `interval_s`; reports sessions per state, averaged over samples."""

    def __init__(self, database_url: str, interval_s: float = 0.05) -> None:
        self._url = libpq_url(database_url)
        self._interval = interval_s
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._samples = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WaitSampler:
        conn: Any = await asyncpg.connect(self._url)
        self._task = asyncio.create_task(self._run(conn))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, conn: Any) -> None:
        try:
            while True:
                for row in await conn.fetch(_ACTIVITY):
                    self._counts[(row["app"] or "?", row["state"], row["wait"])] += 1
                self._samples += 1
                await asyncio.sleep(self._interval)
        finally:
            await conn.close()

    def top(self, n: int = 6) -> list[str]:
        """The busiest (service, state, wait) triples as average concurrent sessions."""
        samples = max(self._samples, 1)
        return [
            f"{count / samples:.2f} {app} {state} ({wait})" for (app, state, wait), count in self._counts.most_common(n)
        ]


async def settle(
    database_url: str, meter: CpuMeter, *, limit_s: float = 120, quiet_cores: float = 0.15
) -> tuple[float, list[str]]:
    """Waits for PostgreSQL to go quiet after a burst (autovacuum), so a steady-rate phase
    measures the steady state; returns how long that took and the maintenance work seen meanwhile."""
    conn: Any = await asyncpg.connect(libpq_url(database_url))
    started = time.perf_counter()
    seen: set[str] = set()
    try:
        while time.perf_counter() - started < limit_s:
            meter.start()
            await asyncio.sleep(1.0)
            for row in await conn.fetch(_MAINTENANCE):
                seen.add(row["what"])
            if meter.cores()["postgres"] < quiet_cores:
                break
    finally:
        await conn.close()
    return time.perf_counter() - started, sorted(seen)
