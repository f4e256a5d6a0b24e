"""Where the servers are: the environment first, then what a running `cartera up` recorded, then defaults.

`cartera up` writes `<CARTERA_HOME>/running.json` (database, broker and service URLs, its pid) while
it runs and removes it when it stops, so commands run beside `make run` find the embedded servers
without any setting. Keys come from `CARTERA_<ROLE>_KEY` or the `keys.env` that `cartera up` saves.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cartera.services import SERVICES

STATE_FILE = "running.json"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
KEY_ENV = {"admin": "CARTERA_ADMIN_KEY", "write": "CARTERA_WRITE_KEY", "read": "CARTERA_READ_KEY"}


def url_env(service: str) -> str:
    return f"CARTERA_{service.upper()}_URL"


@dataclass(frozen=True)
class Connection:
    database_url: str
    bootstrap: str
    services: Mapping[str, str]
    home: Path
    keys: Mapping[str, str] = field(default_factory=dict)
    origin: str = "defaults"  # where the servers' addresses came from, for messages

    def url(self, service: str) -> str:
        return self.services[service]

    def key(self, role: str) -> str | None:
        return self.keys.get(role)


def home_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("CARTERA_HOME") or ".cartera")


def resolve(environ: Mapping[str, str] | None = None, home: Path | None = None) -> Connection:
    env = os.environ if environ is None else environ
    home = home or home_dir(env)
    state = read_running_state(home)
    origin = f"cartera up ({home / STATE_FILE})" if state else "defaults"
    recorded = state.get("services", {}) if state else {}
    host = _client_host(env.get("CARTERA_HOST", ""))
    services = {
        s.name: (
            env.get(url_env(s.name)) or recorded.get(s.name) or f"http://{host}:{env.get(s.port_env) or s.default_port}"
        ).rstrip("/")
        for s in SERVICES
    }
    if any(env.get(name) for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")):
        origin = "environment"
    return Connection(
        database_url=env.get("DATABASE_URL") or (state or {}).get("database_url") or DEFAULT_DATABASE_URL,
        bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS")
        or (state or {}).get("kafka_bootstrap_servers")
        or DEFAULT_BOOTSTRAP,
        services=services,
        home=home,
        keys=_keys(env, home),
        origin=origin,
    )


def _client_host(bound: str) -> str:
    """Services bound to every interface are still reached on loopback from here."""
    return "127.0.0.1" if bound in ("", "0.0.0.0", "::") else bound  # noqa: S104 - compared, not bound


def _keys(env: Mapping[str, str], home: Path) -> dict[str, str]:
    found = {role: env[name] for role, name in KEY_ENV.items() if env.get(name)}
    path = home / "keys.env"
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            role = next((r for r, n in KEY_ENV.items() if n == name.strip()), None)
            if role and role not in found and value.strip():
                found[role] = value.strip()
    return found


def read_running_state(home: Path) -> dict[str, Any] | None:
    """The state a live `cartera up` recorded; None when there is none or its process is gone."""
    try:
        state = json.loads((home / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not _alive(state.get("pid")):
        return None
    return state


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but alive
    return True


def write_running_state(home: Path, env: Mapping[str, str]) -> Path:
    """Called by `cartera up` once its servers are up: how to reach them, readable by the owner only."""
    host = _client_host(env.get("CARTERA_HOST", ""))
    state = {
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(),
        "database_url": env["DATABASE_URL"],
        "kafka_bootstrap_servers": env["KAFKA_BOOTSTRAP_SERVERS"],
        "services": {s.name: f"http://{host}:{env.get(s.port_env) or s.default_port}" for s in SERVICES},
    }
    path = home / STATE_FILE
    path.touch(mode=0o600)
    path.chmod(0o600)  # the database URL may carry a password
    path.write_text(json.dumps(state, indent=2) + "\n")
    return path


def clear_running_state(home: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (home / STATE_FILE).unlink()


def redact(url: str) -> str:
    """A URL fit to print: the password, if any, replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
