"""The `cartera` command line: builds the parser from the command groups and maps failures to exit codes."""

from __future__ import annotations

import argparse
import sys

from cartera.commands import GROUPS
from cartera.commands.base import EXIT_FAILURE, CommandError

EPILOG = """\
exit codes:
  0  done (for status: everything healthy)
  1  failed: a server unreachable, a file unreadable, a key refused, rows rejected, something unhealthy
  2  usage: unknown command, missing or malformed argument

where the servers are (environment first, then what a running `cartera up` recorded in
$CARTERA_HOME/running.json, then the defaults):
  DATABASE_URL             postgresql://postgres@127.0.0.1:5432/postgres
  KAFKA_BOOTSTRAP_SERVERS  127.0.0.1:9092
  CARTERA_INGEST_URL, CARTERA_SEGMENTER_URL, CARTERA_SCORING_URL, CARTERA_CAMPAIGNS_URL
                           http://127.0.0.1:8001 … 8004 (or INGEST_PORT, … as for `cartera up`)
  CARTERA_ADMIN_KEY, CARTERA_WRITE_KEY, CARTERA_READ_KEY
                           else $CARTERA_HOME/keys.env, saved by `cartera up` (CARTERA_HOME: .cartera)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cartera",
        description="Run and operate Cartera.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CommandError as exc:
        print(f"cartera {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"cartera {args.command}: interrupted", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
