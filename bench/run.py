"""The benchmark's phases in order, each printing its figures as it goes."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from bench import baselines
from bench.cpu import CpuMeter, describe, machine_load, per_event, postmaster_pid
from bench.encoding import encoding_figures
from bench.latency import LatencyResult, cartera_latency, pipe_latency
from bench.report import Figure, percentile, summary_ms
from bench.throughput import ThroughputResult, run_throughput, warm_up
from bench.waits import WaitSampler, settle
from bench.workload import Workload
from cartera.stack import Servers, Stack


@dataclass(frozen=True)
class Ctx:
    stack: Stack
    args: argparse.Namespace
    run_id: str
    meter: CpuMeter

    @property
    def ingest(self) -> str:
        return self.stack.services["ingest"].url

    @property
    def segmenter(self) -> str:
        return self.stack.services["segmenter"].url

    @property
    def key(self) -> str:
        return self.stack.keys["write"]


def meter_for(stack: Stack, servers: Servers) -> CpuMeter:
    pids = {name: svc.process.pid for name, svc in stack.services.items() if svc.process is not None}
    # The embedded broker belongs to the stack (or, in older stack.py, to the servers).
    broker = getattr(stack, "broker", None) or getattr(servers, "broker", None)
    if broker is not None and broker.process is not None:
        pids["broker"] = broker.process.pid
    pids["bench"] = os.getpid()
    postmaster = postmaster_pid(servers.pg.pgdata) if servers.pg is not None else None
    if postmaster is not None:
        pids["postgres"] = postmaster
    return CpuMeter(pids)


async def run(stack: Stack, servers: Servers, args: argparse.Namespace, run_id: str) -> list[Figure]:
    ctx = Ctx(stack, args, run_id, meter_for(stack, servers))
    load = await machine_load()
    print(f"machine load before starting (services idle): {load:.2f} of {os.cpu_count()} cores", flush=True)
    print("warming up (consumer group join, caches, pools) …", flush=True)
    await warm_up(ctx.ingest, ctx.key, stack.database_url, ctx.segmenter, run_id=run_id)
    first_id = await baselines.last_intake_id(stack.database_url)
    tp = await throughput_phase(ctx)
    waited, maintenance = await settle(stack.database_url, ctx.meter)
    print(
        f"waited {waited:.0f} s for PostgreSQL to go quiet after the burst: {', '.join(maintenance) or 'no autovacuum'}"
    )
    lat = await latency_phase(ctx)
    return await baseline_phase(ctx, tp, lat, first_id)


async def throughput_phase(ctx: Ctx) -> ThroughputResult:
    a = ctx.args
    bodies = Workload.generate(run_id=ctx.run_id, events=a.events, customers=a.customers, batch=a.batch).bodies()
    print(
        f"throughput: {a.events:,} order_completed events for {a.customers:,} customers, "
        f"{len(bodies):,} POSTs of {a.batch}, {a.concurrency} in flight …",
        flush=True,
    )

    def posted(rate: float, cores: dict[str, float]) -> None:
        print(f"  intake: {rate:,.0f} events/s\n    {describe(cores)}", flush=True)

    async with WaitSampler(ctx.stack.database_url) as waits:
        tp = await run_throughput(
            ctx.ingest, ctx.key, ctx.stack.database_url, ctx.segmenter, bodies,
            events=a.events, concurrency=a.concurrency, meter=ctx.meter, on_posted=posted,
        )  # fmt: skip
    if tp.new != a.events:
        print(f"  warning: ingest reported {tp.new:,} new events of {a.events:,}")
    print(
        f"    when posting ended the segmenter had applied {tp.applied_when_intake_done:,} of {a.events:,}; "
        f"{tp.unpublished_when_intake_done:,} were still in ingest's outbox, the rest in the broker\n"
        f"  end to end: {tp.e2e_rate:,.0f} events/s ({tp.e2e_s:.2f} s; posting took {tp.intake_s:.2f} s)\n"
        f"    after posting: {describe(tp.cpu_drain)}\n"
        f"  whole run, {per_event(tp.cpu_seconds, a.events)}\n"
        "  database sessions, on average over the whole run (sessions, service, state, wait):"
    )
    for line in waits.top():
        print(f"    {line}")
    if tp.cpu_seconds["other"] > 0.1 * tp.e2e_s:
        busiest = ", ".join(f"{n} {s:.1f} s" for n, s in sorted(tp.others.items(), key=lambda kv: -kv[1])[:3])
        print(
            f"  warning: other processes used {tp.cpu_seconds['other']:.1f} cpu-s of this run, so its rates are low "
            f"(busiest still running: {busiest}; short-lived ones show only in the total)"
        )
    return tp


async def latency_phase(ctx: Ctx) -> LatencyResult:
    a = ctx.args
    print(
        f"latency: {a.latency_rate:,} events/s for {a.latency_seconds} s, "
        f"POSTs of {a.latency_batch}, new customer each, polled every {a.poll_ms} ms …",
        flush=True,
    )
    ctx.meter.start()
    lat = await cartera_latency(
        ctx.ingest, ctx.key, ctx.stack.database_url, run_id=ctx.run_id,
        rate=a.latency_rate, seconds=a.latency_seconds, batch=a.latency_batch, poll_s=a.poll_ms / 1000,
    )  # fmt: skip
    print(f"  202 → row visible: {summary_ms(lat.visible)}")
    print(f"  202 → row updated_at (transaction start, a lower bound): {summary_ms(lat.updated_at)}")
    print(f"  POST → 202: {summary_ms(lat.http)}")
    if lat.missing or lat.late_starts:
        print(f"  {lat.missing} events never showed up; {lat.late_starts} POSTs started late")
    print(f"    {describe(ctx.meter.cores())}")
    return lat


async def baseline_phase(ctx: Ctx, tp: ThroughputResult, lat: LatencyResult, first_id: int) -> list[Figure]:
    a, url, bootstrap = ctx.args, ctx.stack.database_url, ctx.stack.bootstrap
    print("baselines on the same rows (read back from ingest's intake log) …", flush=True)
    rows = await baselines.intake_rows(url, after_id=first_id, limit=a.events)
    size = sum(len(r[4]) for r in rows) / max(len(rows), 1)
    copy = await baselines.copy_rate(url, rows)
    bare = await baselines.copy_rate(url, rows, indexed=False)
    print(
        f"  asyncpg copy_records_to_table of {len(rows):,} intake rows, 10,000 a call: {copy:,.0f} rows/s "
        f"into a copy of ingest.outbox with its keys and indexes, {bare:,.0f} rows/s without them"
    )
    produce = await baselines.produce_rate(bootstrap, rows, topic=f"bench-produce-{ctx.run_id}")
    print(f"  aiokafka produce (acks=all, linger 5 ms, keyed, {size:.0f} B envelopes): {produce:,.0f} msg/s")
    pipe = await pipe_latency(
        bootstrap, [(r[3], r[4]) for r in rows[:10_000]], topic=f"bench-pipe-{ctx.run_id}",
        rate=a.latency_rate, seconds=a.latency_seconds, batch=a.latency_batch,
    )  # fmt: skip
    print(f"  aiokafka send → consumer receipt at the same pace: {summary_ms(pipe)}")
    sample = Workload.generate(run_id=ctx.run_id, events=10_000, customers=a.customers, batch=a.batch).bodies()
    encoding = encoding_figures(sample)
    p = {q: percentile(lat.visible, q) * 1000 for q in (50, 99)}
    b = {q: percentile(pipe, q) * 1000 for q in (50, 99)}
    hop = "broker hop"
    return [
        Figure("intake, POST /v1/events x100", tp.intake_rate, "ev/s", copy, "COPY rows/s, same indexes", "20,000/s"),
        Figure("end to end into segmenter", tp.e2e_rate, "ev/s", produce, "produce msg/s", "10,000/s"),
        Figure("latency p50, 202 → row", p[50], "ms", b[50], hop),
        Figure("latency p99, 202 → row", p[99], "ms", b[99], hop, "< 500 ms"),
        Figure("latency max, 202 → row", max(lat.visible, default=0) * 1000, "ms", max(pipe, default=0) * 1000, hop),
        *encoding,
    ]
