"""`cartera import FILE`: order history (CSV or NDJSON) streamed to ingest's POST /v1/import.

The file goes up in chunks as it is read (ingest parses and stores it as it arrives, so the upload
progress is the import's progress) and is never held whole. Ingest derives ids from the content,
so importing the same file again changes nothing: after fixing rejected lines, import it all again.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from cartera.commands import clients
from cartera.commands.base import (
    EXIT_FAILURE,
    EXIT_OK,
    CommandError,
    Subparsers,
    UsageError,
    add_command,
    print_json,
)
from cartera.commands.connection import resolve

CHUNK_BYTES = 256 * 1024
CONTENT_TYPES = {"csv": "text/csv", "ndjson": "application/x-ndjson"}


def register(sub: Subparsers) -> None:
    p = add_command(sub, "import", "bulk-import order history from a CSV or NDJSON file", __doc__)
    p.add_argument("file", metavar="FILE", help="a .csv/.tsv or .ndjson/.jsonl file, or - for standard input")
    p.add_argument("--format", choices=sorted(CONTENT_TYPES), help="the file's format (default: from its name)")
    p.add_argument("--key", help="a write (or admin) key; default CARTERA_WRITE_KEY, then CARTERA_ADMIN_KEY")
    p.add_argument("--json", action="store_true", help="print ingest's summary as JSON")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for ingest to answer (600)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    kind = file_format(args.file, args.format)
    conn = resolve()
    key = clients.require_key(conn, args.key, "write", "admin")
    show = sys.stderr.isatty() if args.progress is None else args.progress
    with open_input(args.file) as (stream, size):
        progress = Progress(Path(args.file).name if args.file != "-" else "stdin", size, enabled=show)
        response = clients.call(
            conn,
            "ingest",
            "POST",
            "/v1/import",
            key=key,
            params={"format": kind},
            headers={"Content-Type": CONTENT_TYPES[kind]},
            content=read_chunks(stream, progress),
            timeout=httpx.Timeout(30.0, read=args.timeout),
        )
        progress.finish()
    summary: dict[str, Any] = response.json()
    if args.json:
        print_json(summary)
    else:
        print(describe(summary))
    return EXIT_FAILURE if summary.get("rejected") else EXIT_OK


def file_format(name: str, given: str | None) -> str:
    if given:
        return given
    from ingest.importer import sniff_format  # ingest's own rule for names, so both agree

    found = sniff_format(None, name) if name != "-" else None
    if found is None:
        raise UsageError(f"cannot tell the format of {name!r} from its name; pass --format csv or --format ndjson")
    return found


@contextmanager
def open_input(name: str) -> Iterator[tuple[IO[bytes], int | None]]:
    """The file (or stdin) in binary, and its size when known; an unreadable file is a clear error."""
    if name == "-":
        yield sys.stdin.buffer, None
        return
    path = Path(name)
    try:
        stream = path.open("rb")
        size = path.stat().st_size
    except OSError as exc:
        raise CommandError(f"cannot read {name}: {exc.strerror or exc}") from exc
    with stream:
        yield stream, size


def read_chunks(stream: IO[bytes], progress: Progress) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_BYTES):
        progress.advance(len(chunk))
        yield chunk


class Progress:
    """A one-line bar on stderr, redrawn when the percentage (or, size unknown, the megabyte) changes."""

    WIDTH = 30

    def __init__(self, label: str, total: int | None, *, enabled: bool, stream: IO[str] | None = None) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self._shown: int | None = None

    def advance(self, n: int) -> None:
        self.done += n
        mark = self.done * 100 // self.total if self.total else self.done >> 20
        if self.enabled and mark != self._shown:
            self._shown = mark
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def line(self) -> str:
        sent = f"{self.done / 1e3:.1f} kB" if self.done < 1e6 else f"{self.done / 1e6:.1f} MB"
        if not self.total:
            return f"importing {self.label}  {sent}"
        filled = self.WIDTH * self.done // self.total
        percent = self.done * 100 // self.total
        return f"importing {self.label}  [{'#' * filled}{'.' * (self.WIDTH - filled)}] {percent:3d}%  {sent}"

    def finish(self) -> None:
        if self.enabled and self._shown is not None:
            self.stream.write("\n")
            self.stream.flush()


def describe(summary: dict[str, Any]) -> str:
    accepted, new, rejected = summary.get("accepted", 0), summary.get("new", 0), summary.get("rejected", 0)
    lines = [f"accepted {accepted} rows ({new} new, {accepted - new} already imported), rejected {rejected}"]
    for item in summary.get("errors", []):
        problems = "; ".join(f"{e.get('field')}: {e.get('problem')}" for e in item.get("errors", []))
        lines.append(f"  line {item.get('line')}: {problems}")
    if summary.get("errors_truncated"):
        lines.append(f"  … {rejected - len(summary.get('errors', []))} more rejected lines not listed")
    if rejected:
        lines.append("fix the rejected lines and import the whole file again: rows already in change nothing")
    return "\n".join(lines)
