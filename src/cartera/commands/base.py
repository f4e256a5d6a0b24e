"""What every subcommand shares: its expected failures, exit codes and plain output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TypeAlias

import orjson

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # argparse has no public name


class CommandError(Exception):
    """An expected failure (unreachable server, bad file, refused key): one clear line, exit 1."""

    exit_code = EXIT_FAILURE


class UsageError(CommandError):
    """The command line itself is wrong or incomplete: exit 2, as argparse does."""

    exit_code = EXIT_USAGE


def add_command(sub: Subparsers, name: str, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=description or help_text,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def note(message: str) -> None:
    """Progress and explanations go to stderr, so stdout stays what a script captures."""
    print(message, file=sys.stderr, flush=True)


def print_json(value: Any) -> None:
    print(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode())


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  ") -> str:
    """Left-aligned columns wide enough for their widest cell."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
