"""The figures and the table they end in."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


def fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:,.1f} ms"
    return f"{value:,.0f} {unit}"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; good enough for thousands of samples."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    if not ms:
        return "no samples"
    return (
        f"n={len(ms)} p50={percentile(ms, 50):.1f} ms p99={percentile(ms, 99):.1f} ms "
        f"max={max(ms):.1f} ms mean={statistics.fmean(ms):.1f} ms"
    )


def table(figures: list[Figure]) -> str:
    head = ["metric", "value", "baseline", "ratio", "target"]
    rows = [head]
    for f in figures:
        base = (
            "-"
            if f.baseline is None
            else f"{fmt(f.baseline, '' if f.unit != 'ms' else 'ms').strip()} ({f.baseline_name})"
        )
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        rows.append([f.metric, fmt(f.value, f.unit), base, ratio, f.target or "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
