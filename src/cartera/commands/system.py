"""`cartera up` and `cartera migrate`: run the whole system, or only prepare a database for it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cartera.commands.base import EXIT_OK, Subparsers, UsageError, add_command
from cartera.commands.connection import home_dir


def register(sub: Subparsers) -> None:
    up = add_command(
        sub,
        "up",
        "run every service (embedded PostgreSQL and broker unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set)",
    )
    up.add_argument("--home", type=Path, default=home_dir(), help="where data and logs live (default .cartera)")
    up.set_defaults(run=run_up)
    mig = add_command(sub, "migrate", "migrate every service's schema in DATABASE_URL")
    mig.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    mig.set_defaults(run=run_migrate)


def run_up(args: argparse.Namespace) -> int:
    from cartera.up import up

    return up(args.home.resolve())


def run_migrate(args: argparse.Namespace) -> int:
    if not args.database_url:
        raise UsageError("DATABASE_URL is not set (or pass --database-url)")
    from cartera.setup import migrate_all

    migrate_all(args.database_url)
    print("migrated")
    return EXIT_OK
