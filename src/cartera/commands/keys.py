"""`cartera keys create|revoke|list`: API keys, made directly in ingest's key table (DATABASE_URL).

Keys are made exactly as ingest makes them (ingest.keys): stored hashed and announced on the
`access` topic in the same transaction, so every service accepts a new key, or refuses a revoked
one, as soon as ingest's relay has published the announcement (usually within a second). A key's
id is its prefix, its first 10 characters (ck_w_Ab3dE), which `keys list` shows and `keys revoke`
takes. A new key is printed once, alone on stdout, so `KEY=$(cartera keys create --role write)`
works. No admin key is needed: whoever can reach the database can do anything anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import datetime
from typing import Any

from sqlalchemy import text

from cartera.commands import clients
from cartera.commands.base import EXIT_OK, CommandError, Subparsers, add_command, note, print_json, table
from cartera.commands.connection import Connection, resolve
from cartera_common.access import ROLES, Role, hash_key, key_prefix
from cartera_common.clock import clock_from_env

DEFAULT_WORKSPACE = "default"
_ACTIVE = (
    "SELECT DISTINCT workspace_id, prefix FROM access_key WHERE revoked_at IS NULL "
    "AND (prefix = :p OR key_hash = :h) AND (CAST(:w AS text) IS NULL OR workspace_id = :w)"
)
_LIST = (
    "SELECT prefix, role, workspace_id, created_at, revoked_at FROM access_key "
    "WHERE CAST(:w AS text) IS NULL OR workspace_id = :w ORDER BY workspace_id, created_at"
)


def register(sub: Subparsers) -> None:
    group = add_command(sub, "keys", "create, revoke and list API keys", __doc__)
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = add_command(actions, "create", "make a key; it is printed once")
    create.add_argument("--role", required=True, choices=ROLES, help="write: send events; read: read APIs; admin: all")
    create.add_argument("--workspace", default=DEFAULT_WORKSPACE, help="the key's workspace (default: default)")
    create.add_argument("--json", action="store_true", help="print key, id, role and workspace as JSON")
    create.set_defaults(run=run_create)
    revoke = add_command(actions, "revoke", "revoke a key; every service refuses it within moments")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id (its first 10 characters) or the key itself")
    revoke.add_argument("--workspace", help="the key's workspace, when its id is found in several")
    revoke.set_defaults(run=run_revoke)
    ls = add_command(actions, "list", "keys by id, role and workspace (never the keys themselves)")
    ls.add_argument("--workspace", help="only this workspace's keys")
    ls.add_argument("--json", action="store_true", help="print them as JSON")
    ls.set_defaults(run=run_list)


def run_create(args: argparse.Namespace) -> int:
    key = asyncio.run(create(resolve(), args.role, args.workspace))
    if args.json:
        print_json({"key": key, "id": key_prefix(key), "role": args.role, "workspace_id": args.workspace})
    else:
        note(
            f"created {args.role} key {key_prefix(key)} in workspace {args.workspace} (shown once; only its hash is kept)"
        )
        print(key)
    return EXIT_OK


def run_revoke(args: argparse.Namespace) -> int:
    workspace, prefix = asyncio.run(revoke(resolve(), args.key_id, args.workspace))
    print(f"revoked {prefix} in workspace {workspace}")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    found = asyncio.run(list_keys(resolve(), args.workspace))
    if args.json:
        print_json(found)
    elif not found:
        print("no keys")
    else:
        rows = [
            [k["prefix"], k["role"], k["workspace_id"], _when(k["created_at"]), _when(k["revoked_at"])] for k in found
        ]
        print(table(["ID", "ROLE", "WORKSPACE", "CREATED", "REVOKED"], rows, indent=""))
    return EXIT_OK


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


def _now() -> datetime:
    return clock_from_env(os.environ.get("CARTERA_CLOCK")).now()


async def create(conn: Connection, role: Role, workspace: str) -> str:
    from ingest.keys import add_key, workspace_exists

    async with clients.database(conn, "ingest") as engine, engine.begin() as db:
        if not await workspace_exists(db, workspace_id=workspace):
            raise CommandError(
                f"there is no workspace {workspace!r} (an admin of default creates one: POST /v1/workspaces)"
            )
        return await add_key(db, workspace_id=workspace, role=role, now=_now())


async def revoke(conn: Connection, key_id: str, workspace: str | None) -> tuple[str, str]:
    from ingest.keys import revoke_key

    async with clients.database(conn, "ingest") as engine, engine.begin() as db:
        params = {"p": key_id, "h": hash_key(key_id), "w": workspace}
        matches = (await db.execute(text(_ACTIVE), params)).all()
        where = f" in workspace {workspace}" if workspace else ""
        if not matches:
            raise CommandError(f"no active key {key_prefix(key_id)}{where} (`cartera keys list` shows them)")
        if len(matches) > 1:
            spaces = ", ".join(sorted(m.workspace_id for m in matches))
            raise CommandError(f"key id {key_id} is in several workspaces ({spaces}); pass --workspace")
        found = matches[0]
        await revoke_key(db, workspace_id=found.workspace_id, prefix=found.prefix, now=_now())
        return found.workspace_id, found.prefix


async def list_keys(conn: Connection, workspace: str | None) -> list[dict[str, Any]]:
    async with clients.database(conn, "ingest") as engine, engine.connect() as db:
        return [dict(r) for r in (await db.execute(text(_LIST), {"w": workspace})).mappings()]
