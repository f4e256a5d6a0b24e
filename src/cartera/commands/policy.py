"""`cartera policy show|set`: the workspace's suspension point and portfolio rules (segmenter's /policy).

`show` prints the policy document alone on stdout (its version on stderr), so
`cartera policy show > policy.json`, an edit, and `cartera policy set policy.json` round-trip.
`set` replaces the policy (fields left out take their defaults) and the segmenter re-evaluates
every customer under it within seconds. Both use the workspace of the admin key presented.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from cartera.commands import clients
from cartera.commands.base import EXIT_OK, CommandError, Subparsers, add_command, note, print_json
from cartera.commands.connection import resolve


def register(sub: Subparsers) -> None:
    group = add_command(sub, "policy", "show or replace the workspace's policy", __doc__)
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = add_command(actions, "show", "print the policy in force as JSON")
    show.add_argument("--key", help="an admin key (default CARTERA_ADMIN_KEY)")
    show.add_argument("--json", action="store_true", help="print version, author and policy together")
    show.set_defaults(run=run_show)
    put = add_command(actions, "set", "replace the policy with a JSON file")
    put.add_argument("file", metavar="FILE", help="the policy as JSON (as `policy show` prints it), or - for stdin")
    put.add_argument("--key", help="an admin key (default CARTERA_ADMIN_KEY)")
    put.add_argument("--json", action="store_true", help="print version, author and policy together")
    put.set_defaults(run=run_set)


def run_show(args: argparse.Namespace) -> int:
    conn = resolve()
    found = clients.call(conn, "segmenter", "GET", "/policy", key=clients.require_key(conn, args.key, "admin")).json()
    _print(found, as_json=args.json)
    return EXIT_OK


def run_set(args: argparse.Namespace) -> int:
    policy = read_policy(args.file)
    conn = resolve()
    key = clients.require_key(conn, args.key, "admin")
    saved = clients.call(conn, "segmenter", "PUT", "/policy", key=key, json=policy).json()
    _print(saved, as_json=args.json)
    return EXIT_OK


def read_policy(name: str) -> dict[str, Any]:
    """The file's JSON object; the whole `policy show --json` answer is accepted too (its `policy`)."""
    shown = "standard input" if name == "-" else name
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {name}: {exc.strerror or exc}") from exc
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"{shown} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CommandError(f"{shown} must hold a JSON object, not {type(data).__name__}")
    if isinstance(data.get("policy"), dict) and "version" in data:
        return dict(data["policy"])
    return data


def _print(found: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    version = found.get("version")
    origin = "the built-in default" if version == 0 else f"set {found.get('created_at')} by {found.get('created_by')}"
    note(f"policy version {version}, {origin}")
    print_json(found.get("policy"))
