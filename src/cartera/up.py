"""`cartera up`: the whole system on one machine, embedded servers unless told otherwise.

Services run in their own sessions, so Ctrl-C reaches only this supervisor, which stops them in
order: services first (each drains its requests, consumers and outbox), then the broker, then
PostgreSQL. Nothing is left running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cartera.commands.connection import clear_running_state, write_running_state
from cartera.embedded import EmbeddedBroker, EmbeddedPostgres, SmtpSink
from cartera.services import SERVICES, ServiceSpec
from cartera.setup import prepare
from cartera_common.access import Role

KEY_ENV = {"admin": "CARTERA_ADMIN_KEY", "write": "CARTERA_WRITE_KEY", "read": "CARTERA_READ_KEY"}


@dataclass
class Supervisor:
    home: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: bool = False

    def port(self, spec: ServiceSpec) -> int:
        return int(self.env.get(spec.port_env, spec.default_port))

    def start(self, spec: ServiceSpec) -> None:
        log = open(self.home / "logs" / f"{spec.name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes[spec.name] = subprocess.Popen(  # noqa: S603 - our own interpreter and binaries
            [sys.executable, "-m", spec.name],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout_s
        pending = list(SERVICES)
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending if not _ready(self.port(s))]
            for s in pending:
                if self.processes[s.name].poll() is not None:
                    raise RuntimeError(f"{s.name} exited; see {self.home / 'logs' / (s.name + '.log')}")
            time.sleep(0.2)
        return [s.name for s in pending]

    def supervise(self) -> None:
        """Restarts a service that dies, until asked to stop."""
        while not self.stopping:
            for spec in SERVICES:
                proc = self.processes.get(spec.name)
                if proc is not None and proc.poll() is not None and not self.stopping:
                    print(
                        f"!! {spec.name} exited with {proc.returncode}; restarting (log: .cartera/logs/{spec.name}.log)",
                        flush=True,
                    )
                    self.start(spec)
            time.sleep(0.5)

    def stop_all(self, timeout_s: float = 30) -> None:
        self.stopping = True
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self.processes.values():
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _ready(port: int) -> bool:
    """Ready to serve and its consumers in their groups, so a first event is applied at once."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200) and json.loads(resp.read()).get("consumers") != "joining"
    except (OSError, ValueError):
        return False


def _keys(home: Path, generated: dict[Role, str], embedded_db: bool) -> dict[str, str]:
    """Keys to print: from the environment, generated just now, or saved at first start (embedded only)."""
    path = home / "keys.env"
    if generated and embedded_db:
        path.write_text("".join(f"export {KEY_ENV[r]}={k}\n" for r, k in generated.items()))
        path.chmod(0o600)
    found = {role: os.environ[env] for role, env in KEY_ENV.items() if os.environ.get(env)}
    found.update({str(role): key for role, key in generated.items()})
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            role = next((r for r, e in KEY_ENV.items() if e == name), None)
            if role and role not in found:
                found[role] = value
    return found


def up(home: Path) -> int:
    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    env = dict(os.environ)
    pg: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    sink: SmtpSink | None = None
    sup: Supervisor | None = None
    interrupted = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True
        if sup is not None:
            sup.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if not env.get("DATABASE_URL"):
            pg = EmbeddedPostgres(home / "pg", int(env.get("CARTERA_PG_PORT", "55432")))
            print(f"starting embedded PostgreSQL on 127.0.0.1:{pg.port} (data in {pg.pgdata})", flush=True)
            pg.start()
            env["DATABASE_URL"] = pg.url
        if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
            broker = EmbeddedBroker(int(env.get("CARTERA_KAFKA_PORT", "9092")), home / "logs" / "broker.log")
            print(f"starting embedded Kafka-protocol broker (Tansu) on {broker.bootstrap}", flush=True)
            broker.start()
            env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
        if not env.get("CAMPAIGNS_SMTP_HOST"):
            sink = SmtpSink(int(env.get("CARTERA_SMTP_SINK_PORT", "2525")), home / "mail", home / "logs" / "mail.log")
            print(f"starting the local SMTP sink on 127.0.0.1:{sink.port} (mail kept in {sink.directory})", flush=True)
            sink.start()
            env.update(
                CAMPAIGNS_SMTP_HOST="127.0.0.1",
                CAMPAIGNS_SMTP_PORT=str(sink.port),
                CAMPAIGNS_MAIL_DIR=str(sink.directory),
            )
        print("migrating schemas, creating topics, checking keys", flush=True)
        generated = prepare(env["DATABASE_URL"], env["KAFKA_BOOTSTRAP_SERVERS"])
        sup = Supervisor(home, env)
        write_running_state(home, env)  # how the other `cartera` commands find these servers
        for spec in SERVICES:
            sup.start(spec)
        late = sup.wait_ready()
        if interrupted:
            return 130
        _print_banner(sup, _keys(home, generated, pg is not None), late, home)
        sup.supervise()
        return 0
    finally:
        print("\nstopping: services drain first", flush=True)
        if sup is not None:
            sup.stop_all()
        if sink is not None:
            sink.stop()
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
        clear_running_state(home)
        print("stopped", flush=True)


def _print_banner(sup: Supervisor, keys: dict[str, str], late: list[str], home: Path) -> None:
    print("\nCartera is running\n")
    for spec in SERVICES:
        port = sup.port(spec)
        state = "starting…" if spec.name in late else "ready"
        print(f"  {spec.name:<10} http://127.0.0.1:{port}   docs: http://127.0.0.1:{port}/docs   ({state})")
    if sup.env.get("CAMPAIGNS_MAIL_DIR"):
        campaigns = next(s for s in SERVICES if s.name == "campaigns")
        print(
            f"\n  win-back email goes to the local SMTP sink: {sup.env['CAMPAIGNS_MAIL_DIR']}, "
            f"listed at http://127.0.0.1:{sup.port(campaigns)}/mail"
        )
    print()
    if keys:
        for role in ("admin", "write", "read"):
            if role in keys:
                print(f"  {KEY_ENV[role]}={keys[role]}")
        if (home / "keys.env").exists():
            print(f"\n  (saved in {home / 'keys.env'}; `source` it in another shell)")
    else:
        print("  Keys were shown when the workspace was created; an admin key makes more (POST /v1/keys).")
    print(f"\n  logs: {home / 'logs'}    stop: Ctrl-C\n", flush=True)
