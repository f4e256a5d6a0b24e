"""`cartera refit`: fit the value models (BG/NBD, Gamma-Gamma) and rescore now, through scoring's API.

Scoring refits the workspace of the admin key presented (CARTERA_ADMIN_KEY, --key, or the
`keys.env` that `cartera up` saves). --workspace checks that the key belongs to that workspace
before anything is fitted; make a key for another workspace with `cartera keys create`.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from cartera.commands import clients
from cartera.commands.base import EXIT_OK, CommandError, Subparsers, UsageError, add_command, print_json
from cartera.commands.connection import Connection, resolve
from cartera.commands.replay import parse_since


def register(sub: Subparsers) -> None:
    p = add_command(sub, "refit", "refit the value models and rescore every customer now", __doc__)
    p.add_argument("--workspace", help="the workspace to refit; the admin key must belong to it")
    p.add_argument("--as-of", help="calibration end (ISO 8601); later orders form the holdout check (default now)")
    p.add_argument("--key", help="an admin key (default CARTERA_ADMIN_KEY)")
    p.add_argument("--json", action="store_true", help="print scoring's answer as JSON")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the fit (900)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.as_of:
        try:
            body["as_of"] = parse_since(args.as_of, datetime.now(UTC)).isoformat()
        except UsageError as exc:
            raise UsageError(str(exc).replace("--since", "--as-of")) from None
    conn = resolve()
    key = clients.require_key(conn, args.key, "admin")
    if args.workspace:
        check_workspace(conn, key, args.workspace)
    done = clients.call(conn, "scoring", "POST", "/models/refit", key=key, json=body, timeout=args.timeout).json()
    if args.json:
        print_json(done)
    else:
        print(describe(done))
    return EXIT_OK


def check_workspace(conn: Connection, key: str, workspace: str) -> None:
    """An admin key lists its own workspace's keys, which name the workspace."""
    listed = clients.call(conn, "ingest", "GET", "/v1/keys", key=key).json()
    owner = listed[0]["workspace_id"] if listed else None
    if owner != workspace:
        raise CommandError(
            f"the admin key belongs to workspace {owner!r}, not {workspace!r}; pass --key with an admin key of "
            f"{workspace!r} (`cartera keys create --role admin --workspace {workspace}` makes one)"
        )


def describe(done: dict[str, Any]) -> str:
    gg = done.get("gamma_gamma_fit_id")
    lines = [
        f"refitted workspace {done.get('workspace_id')} as of {done.get('as_of')}: {done.get('customers')} customers",
        f"  BG/NBD fit #{done.get('bgnbd_fit_id')} ({'converged' if done.get('converged') else 'did not converge'})"
        + (f", Gamma-Gamma fit #{gg}" if gg is not None else ", no Gamma-Gamma fit"),
        f"  {done.get('published')} score updates published",
    ]
    if holdout := done.get("holdout"):
        lines.append("  holdout: " + ", ".join(f"{k} {v:.4g}" for k, v in holdout.items()))
    return "\n".join(lines)
