"""Real servers for the tests: PostgreSQL and a Kafka-protocol broker, plus the services as processes.

When DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set the tests use those servers (every stack gets
a database of its own); otherwise they start the embedded ones, exactly as `cartera up` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from cartera.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from cartera.setup import migrate_all, prepare
from cartera_common.settings import libpq_url


def _admin_sql(server_url: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(libpq_url(server_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def create_database(server_url: str) -> str:
    """A fresh database on the server, so each stack starts empty."""
    name = "cartera_test_" + uuid.uuid4().hex[:12]
    _admin_sql(server_url, f'CREATE DATABASE "{name}"')
    base, _, _ = libpq_url(server_url).rpartition("/")
    return f"{base}/{name}"


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and binaries
            [sys.executable, "-m", self.name],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@dataclass
class Stack:
    """One isolated Cartera: its own database and broker, its services as real processes."""

    database_url: str
    bootstrap: str
    workdir: Path
    broker: EmbeddedBroker | None = None
    keys: dict[str, str] = field(default_factory=dict)
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def prepare(self) -> None:
        generated = prepare(self.database_url, self.bootstrap)
        self.keys = {str(role): key for role, key in generated.items()}

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CARTERA_", "INGEST_", "SEGMENTER_", "SCORING_", "CAMPAIGNS_"))
        }
        env.update({"DATABASE_URL": self.database_url, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap})
        return env

    def start(self, name: str, *, wait: bool = True, **extra_env: str) -> ServiceProcess:
        port = free_port()
        env = self.env() | {f"{name.upper()}_PORT": str(port)} | extra_env
        svc = ServiceProcess(name, port, env, self.workdir / f"{name}-{port}.log")
        svc.start()
        if wait:
            svc.wait_ready()
        self.services[name] = svc
        return svc

    def stop_broker(self) -> None:
        """Stops the stack's embedded broker, which forgets every topic, message and offset."""
        assert self.broker is not None, "only a stack with its own embedded broker can lose it"
        self.broker.stop()

    def start_broker(self) -> None:
        assert self.broker is not None
        self.broker.start()

    def stop(self) -> None:
        for svc in self.services.values():
            svc.stop()
        if self.broker is not None:
            self.broker.stop()


@dataclass
class Servers:
    """The PostgreSQL server the tests use, and the broker settings for their stacks.

    Each stack gets a database of its own and, unless KAFKA_BOOTSTRAP_SERVERS names a broker,
    an embedded broker of its own too (it starts in a fraction of a second), so stacks never
    share topics or consumer groups.
    """

    database_url: str
    bootstrap: str | None = None
    pg: EmbeddedPostgres | None = None
    created: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, workdir: Path) -> Servers:
        pg = None
        db = os.environ.get("DATABASE_URL")
        if not db:
            pg = EmbeddedPostgres(workdir / "pg", free_port())
            pg.start()
            db = pg.url
        return cls(db, os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None, pg)

    def new_stack(self, workdir: Path) -> Stack:
        broker = None
        bootstrap = self.bootstrap
        if bootstrap is None:
            broker = EmbeddedBroker(free_port(), workdir / f"broker-{uuid.uuid4().hex[:6]}.log")
            broker.start()
            bootstrap = broker.bootstrap
        stack = Stack(create_database(self.database_url), bootstrap, workdir, broker)
        self.created.append(stack.database_url)
        stack.prepare()
        return stack

    def migrated_database(self) -> str:
        """A fresh database with every service's schema and no services or broker: for tests that run
        handlers in-process, where a running service (its own clock, its own sweep) would interfere."""
        url = create_database(self.database_url)
        self.created.append(url)
        migrate_all(url)
        return url

    def stop(self) -> None:
        if self.pg is not None:
            self.pg.stop()  # its data folder goes with the test run
            return
        for url in self.created:  # a server we were given keeps nothing of ours
            with contextlib.suppress(Exception):  # never keep the rest from stopping
                _admin_sql(self.database_url, f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    @contextmanager
    def running_stack(self, workdir: Path, *, wait: bool = True, **env: str) -> Iterator[Stack]:
        """A new stack with ingest and the segmenter running, stopped on the way out."""
        stack = self.new_stack(workdir)
        try:
            stack.start("ingest", wait=wait, **env)
            stack.start("segmenter", wait=wait, **env)
            yield stack
        finally:
            stack.stop()
