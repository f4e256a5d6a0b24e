"""CPU time per component, read from /proc, so each phase says who used the two cores.

Anything else busy on the machine (another test run, say) shows up as `other`, so a figure taken
on a shared machine says so.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, float, float] | None:
    """(comm, ppid, own cpu seconds, reaped children's cpu seconds) of one process, or None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    # Index 0 here is field 3 (state) of proc(5): ppid is field 4, utime/stime 14/15, cutime/cstime 16/17.
    return comm, int(rest[1]), (int(rest[11]) + int(rest[12])) / _TICK, (int(rest[13]) + int(rest[14])) / _TICK


def _label(pid: int, comm: str) -> str:
    """A foreign process by its command line's first words, e.g. `python -m pytest`."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return comm
    words = [
        Path(a.decode(errors="replace")).name if i == 0 else a.decode(errors="replace") for i, a in enumerate(argv[:3])
    ]
    return " ".join(w for w in words if w) or comm


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent not idle, all cores together."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / _TICK


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


@dataclass
class CpuMeter:
    """Components by root pid (the process and its children). Without a `postgres` root, every
    process called `postgres` counts as PostgreSQL (a configured server is not ours to tell apart)."""

    roots: Mapping[str, int]
    others: dict[str, float] = field(default_factory=dict)  # CPU seconds of the busiest foreign commands
    _start: dict[int, tuple[str, float]] = field(default_factory=dict)
    _busy0: float = 0.0
    _t0: float = 0.0

    def sample(self) -> dict[int, tuple[str, float]]:
        owners = {pid: name for name, pid in self.roots.items()}
        found: dict[int, tuple[str, float]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            got = _stat(pid)
            if got is None:
                continue
            comm, ppid, seconds, reaped = got
            if pid in owners:
                seconds += reaped  # e.g. autovacuum workers that came and went under the postmaster
            owner = owners.get(pid) or owners.get(ppid)
            if owner is None and comm == "postgres" and "postgres" not in self.roots:
                owner = "postgres"
            found[pid] = (owner or "~" + _label(pid, comm), seconds)
        return found

    def start(self) -> None:
        self._start = self.sample()
        self._busy0 = machine_busy_s()
        self._t0 = time.monotonic()

    def used(self) -> tuple[dict[str, float], float]:
        """CPU seconds used by each component since start(), everything else as `other`; and the wall time."""
        wall = max(time.monotonic() - self._t0, 1e-9)
        used = dict.fromkeys([*self.roots, "postgres"], 0.0)
        others: dict[str, float] = {}
        for pid, (owner, seconds) in self.sample().items():
            before = self._start.get(pid)
            delta = seconds - (before[1] if before and before[0] == owner else 0.0)
            if owner.startswith("~"):
                others[owner[1:]] = others.get(owner[1:], 0.0) + delta
            else:
                used[owner] += delta
        used["other"] = max(machine_busy_s() - self._busy0 - sum(used.values()), 0.0)
        self.others = dict(sorted(others.items(), key=lambda kv: -kv[1])[:3])
        return used, wall

    def cores(self) -> dict[str, float]:
        """Average cores used by each component since start()."""
        used, wall = self.used()
        return {k: v / wall for k, v in used.items()}


def per_event(seconds: Mapping[str, float], events: int) -> str:
    """CPU microseconds per event by component: unlike rates, this barely moves when the machine is shared.

    The total leaves out the load generator (`bench`) and `other`, so its ceiling is the system's own."""
    us = {k: v / events * 1e6 for k, v in seconds.items() if k != "other"}
    parts = [f"{k} {v:.0f}" for k, v in sorted(us.items(), key=lambda kv: -kv[1])]
    total = sum(v for k, v in us.items() if k != "bench")
    ceiling = (os.cpu_count() or 1) / (total / 1e6) if total else float("inf")
    return (
        f"cpu µs per event: {', '.join(parts)}; system total {total:.0f} µs "
        f"→ at most {ceiling:,.0f} ev/s on {os.cpu_count()} cores"
    )


def describe(cores: Mapping[str, float]) -> str:
    parts = [f"{k} {v:.2f}" for k, v in sorted(cores.items(), key=lambda kv: -kv[1])]
    return f"cpu cores used: {', '.join(parts)} (total {sum(cores.values()):.2f} of {os.cpu_count()})"


async def machine_load(seconds: float = 1.0) -> float:
    """Cores the whole machine is using right now, to warn when the benchmark does not have it alone."""
    busy0, t0 = machine_busy_s(), time.monotonic()
    await asyncio.sleep(seconds)
    return (machine_busy_s() - busy0) / (time.monotonic() - t0)
