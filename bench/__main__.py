"""`python -m bench`: starts servers and services, runs the phases, prints the table, stops everything."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from types import FrameType

from bench.campaigns import run_campaigns
from bench.lifecycle import run_lifecycle
from bench.portfolio import run_portfolio
from bench.report import Figure, table
from bench.run import run
from bench.scoring import run_scoring
from cartera.stack import Servers, Stack


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--events", type=int, default=200_000, help="events in the throughput run")
    p.add_argument("--customers", type=int, default=50_000, help="distinct customers in the throughput run")
    p.add_argument("--batch", type=int, default=100, help="events per POST in the throughput run")
    p.add_argument("--concurrency", type=int, default=12, help="POSTs in flight in the throughput run")
    p.add_argument("--latency-rate", type=int, default=1000, help="events/s in the latency run")
    p.add_argument("--latency-seconds", type=float, default=12, help="length of the latency run")
    p.add_argument("--latency-batch", type=int, default=10, help="events per POST in the latency run")
    p.add_argument("--poll-ms", type=float, default=5, help="how often the latency poller asks PostgreSQL")
    p.add_argument("--ingest-workers", type=int, default=1, help="ingest HTTP worker processes (INGEST_WORKERS)")
    p.add_argument(
        "--only",
        choices=["pipeline", "portfolio", "lifecycle", "scoring", "campaigns"],
        help="run one part (default: all of them)",
    )
    p.add_argument("--portfolio-customers", type=int, default=1_000_000, help="customers in the portfolio run")
    p.add_argument("--portfolio-orders", type=int, default=10_000_000, help="orders in the portfolio run")
    p.add_argument("--lifecycle-customers", type=int, default=1_000_000, help="customers in the sweep and read run")
    p.add_argument("--read-rate", type=float, default=300, help="GET /customers/{id} per second in the read run")
    p.add_argument("--read-seconds", type=float, default=10, help="length of the read run")
    p.add_argument("--scoring-customers", type=int, default=1_000_000, help="customers fitted and scored")
    p.add_argument("--campaign-customers", type=int, default=100_000, help="lapsed customers enrolled and messaged")
    p.add_argument("--quick", action="store_true", help="a smoke run: 5,000 events, 3 s of latency")
    p.add_argument("--workdir", type=Path, help="where data and service logs go (default: a temp dir, removed)")
    args = p.parse_args(argv)
    if args.quick:
        args.events, args.customers, args.latency_seconds = 5_000, 2_000, 3.0
        args.portfolio_customers, args.portfolio_orders = 20_000, 200_000
        args.lifecycle_customers, args.read_seconds = 20_000, 3.0
        args.scoring_customers = 20_000
        args.campaign_customers = 5_000
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Ctrl-C and SIGTERM both end in the `finally` below; a shell that starts us in the background
    # would otherwise have us ignore SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    run_id = uuid.uuid4().hex[:8]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cartera-bench-"))  # not under /root (TOOLCHAIN.md)
    workdir.mkdir(parents=True, exist_ok=True)
    ok, interrupted = False, False
    stack: Stack | None = None
    servers = Servers.start(workdir)
    try:
        figures: list[Figure] = []
        if args.only in (None, "pipeline"):
            stack = servers.new_stack(workdir)
            print(f"database {stack.database_url}, broker {stack.bootstrap}", flush=True)
            stack.start("ingest", INGEST_WORKERS=str(args.ingest_workers))
            stack.start("segmenter")
            print(f"services up: {', '.join(f'{n} {s.url}' for n, s in stack.services.items())}", flush=True)
            figures += asyncio.run(run(stack, servers, args, run_id))
            stack.stop()  # idle services would still take a share of the two cores
        if args.only in (None, "portfolio"):
            # A database of its own with no services on it: the segmenter's timer would classify it too.
            url = servers.migrated_database()
            figures += asyncio.run(run_portfolio(url, customers=args.portfolio_customers, orders=args.portfolio_orders))
        if args.only in (None, "lifecycle"):
            stack = servers.new_stack(workdir)  # ingest and the segmenter start once the data is in
            figures += asyncio.run(
                run_lifecycle(stack, customers=args.lifecycle_customers, seconds=args.read_seconds, rate=args.read_rate)
            )
            stack.stop()
        if args.only in (None, "scoring"):
            figures += run_scoring(args.scoring_customers)  # pure maths: no servers needed
        if args.only in (None, "campaigns"):
            figures += asyncio.run(run_campaigns(servers.migrated_database(), customers=args.campaign_customers))
        print()
        print(table(figures))
        ok = True
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted; stopping everything", file=sys.stderr)
    finally:
        # A second Ctrl-C must not leave servers behind half-stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
        servers.stop()  # also drops the database it created on a server it was given
        if ok and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"data and service logs kept in {workdir}", file=sys.stderr)
    return 0 if ok else 130 if interrupted else 1


if __name__ == "__main__":
    sys.exit(main())
