"""Ingest's own Python per event, in-process on one core: parse, validate and encode a batch and stage
its outbox rows, against parsing the same bodies alone. Unlike the pipeline's rates, this figure
barely moves with what else the machine is doing, so a change to the intake path shows in it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson

from bench.report import Figure
from ingest import intake


def _best_rate(work: Callable[[], int], *, rounds: int = 7, min_s: float = 0.3) -> float:
    """Events per second in the fastest of several rounds: the least disturbed by other processes."""
    work()  # warm caches and pydantic's lazily built validators
    best = 0.0
    for _ in range(rounds):
        events, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < min_s:
            events += work()
        best = max(best, events / elapsed)
    return best


def encoding_figures(bodies: Sequence[bytes]) -> list[Figure]:
    received = datetime.now(UTC)

    def parse() -> int:
        return sum(len(orjson.loads(b)) for b in bodies)

    def encode() -> int:
        staged = 0
        for body in bodies:
            events, bad = intake.validate(orjson.loads(body), workspace_id="default", received_at=received)
            if bad:
                raise RuntimeError(f"the workload has invalid events: {bad[:1]}")
            staged += len(intake.outbox_messages(events))
        return staged

    baseline = _best_rate(parse)
    rate = _best_rate(encode)
    print(
        f"  intake in-process, one core: {rate:,.0f} events/s parsed, validated, encoded and staged "
        f"({1e6 / rate:.1f} µs each); orjson.loads of the same bodies alone: {baseline:,.0f} events/s",
        flush=True,
    )
    return [Figure("intake validate+encode, 1 core", rate, "ev/s", baseline, "orjson.loads ev/s")]
