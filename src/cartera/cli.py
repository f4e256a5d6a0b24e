"""The `cartera` command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cartera", description="Run and operate Cartera.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up",
        help="run every service (embedded PostgreSQL and broker unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set)",
    )
    up.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("CARTERA_HOME", ".cartera")),
        help="where data and logs live (default .cartera)",
    )
    mig = sub.add_parser("migrate", help="migrate every service's schema in DATABASE_URL")
    mig.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args(argv)
    if args.command == "up":
        from cartera.up import up as run_up

        return run_up(args.home.resolve())
    if args.command == "migrate":
        if not args.database_url:
            parser.error("DATABASE_URL is not set (or pass --database-url)")
        from cartera.setup import migrate_all

        migrate_all(args.database_url)
        print("migrated")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
