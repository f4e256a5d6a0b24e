"""What every service process has: engine, Kafka clients, relay, consumers, and a clean stop.

A service declares its consumers and routers; `ServiceRuntime` starts them in the FastAPI
lifespan and, on SIGINT/SIGTERM (uvicorn's), lets in-flight requests finish, lets each consumer
finish and commit its batch, drains the outbox, and closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import uvicorn
import uvicorn.supervisors
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import APIRouter, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cartera_common.access import KeyStore, apply_access
from cartera_common.consumer import ConsumerLoop, Handler
from cartera_common.db import create_engine
from cartera_common.http import install_common_routes
from cartera_common.kafka import make_admin, make_producer
from cartera_common.logs import configure_logging, name_service
from cartera_common.relay import EpochHook, OutboxRelay
from cartera_common.settings import ServiceSettings
from cartera_common.topics import ACCESS
from cartera_common.tracing import setup_tracing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subscription:
    topic: str
    handler: Handler
    group_suffix: str = ""
    lanes: int = 1  # batches over disjoint partitions applied side by side (consumer.split_lanes)


class Background(Protocol):
    """A loop the service runs beside its consumers (a sweep, a scheduler), stopped before them."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class ServiceRuntime:
    name: str
    settings: ServiceSettings
    subscriptions: Sequence[Subscription] = ()
    follow_access: bool = True
    outbox_retention_s: int | None = None
    on_new_epoch: EpochHook | None = None
    on_start: Callable[[], Awaitable[None]] | None = None
    background: Sequence[Background] = ()
    engine: AsyncEngine = field(init=False)
    relay: OutboxRelay = field(init=False)
    _producer: AIOKafkaProducer = field(init=False)
    _admin: AIOKafkaAdminClient = field(init=False)
    consumers: list[ConsumerLoop] = field(init=False, default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _background_tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        name_service(self.name)
        setup_tracing(self.name)
        self.engine = create_engine(self.settings, schema=self.name)

    async def start(self) -> None:
        """Kafka clients need a running loop, so everything but the engine is built here."""
        if self.on_start is not None:
            await self.on_start()
        self._producer = make_producer(self.settings, client_id=f"{self.name}-relay")
        self._admin = make_admin(self.settings, client_id=f"{self.name}-admin")
        self.relay = OutboxRelay(
            service=self.name,
            engine=self.engine,
            producer=self._producer,
            admin=self._admin,
            settings=self.settings,
            retention_s=self.outbox_retention_s,
            on_new_epoch=self.on_new_epoch,
        )
        subs = list(self.subscriptions)
        if self.follow_access:
            subs.append(Subscription(ACCESS, apply_access, ".access"))
        self.consumers = [
            ConsumerLoop(
                group=self.name + sub.group_suffix,
                topic=sub.topic,
                engine=self.engine,
                admin=self._admin,
                settings=self.settings,
                handler=sub.handler,
                lanes=sub.lanes,
            )
            for sub in subs
        ]
        await _start_with_retry(self._admin.start, "kafka admin")
        await _start_with_retry(self._producer.start, "kafka producer")
        self._tasks = [asyncio.create_task(self.relay.run(), name=f"{self.name}-relay")]
        self._tasks += [asyncio.create_task(c.run(), name=c.group) for c in self.consumers]
        self._background_tasks = [asyncio.create_task(b.run(), name=type(b).__name__) for b in self.background]

    async def stop(self) -> None:
        for b in self.background:
            b.stop()
        if self._background_tasks:
            await asyncio.wait(self._background_tasks, timeout=15)
        for c in self.consumers:
            c.stop()
        consumer_tasks = self._tasks[1:]
        if consumer_tasks:
            await asyncio.wait(consumer_tasks, timeout=15)
        self.relay.stop()
        await asyncio.wait(self._tasks[:1], timeout=15)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._producer.stop()
        with contextlib.suppress(Exception):
            await self._admin.close()
        await self.engine.dispose()

    async def ready(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(2):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            async with asyncio.timeout(2):
                await self._admin.list_topics()
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"unreachable: {type(exc).__name__}"
        # Informational, not a readiness condition: a replica beyond the partition count never
        # gets an assignment and is still fit to serve HTTP. `cartera up` waits for it.
        checks["consumers"] = "joined" if all(c.joined for c in self.consumers) else "joining"
        return checks

    def app(self, *, title: str, description: str, routers: Sequence[APIRouter] = ()) -> FastAPI:
        runtime = self

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            await runtime.start()
            try:
                yield
            finally:
                await runtime.stop()

        app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
        app.state.runtime = self
        app.state.keys = KeyStore(self.engine)
        install_common_routes(app, self.ready)
        for router in routers:
            app.include_router(router)
        return app


async def _start_with_retry(start: object, what: str) -> None:
    """Services come up before the broker is reachable in some deployments; keep trying."""
    delay = 0.2
    for attempt in range(60):
        try:
            await start()  # type: ignore[operator]
            return
        except Exception as exc:
            if attempt == 59:
                raise
            log.warning("%s not reachable yet: %r", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def serve(app: FastAPI | str, *, host: str, port: int, log_level: str = "INFO", workers: int = 1) -> None:
    """Runs one service until SIGINT/SIGTERM; uvicorn drains requests, the lifespan drains the rest.

    With several workers, `app` is the import path of an app factory ("pkg.module:create_app"):
    each worker process builds its own app, relay and consumers.
    """
    configure_logging(log_level)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        factory=isinstance(app, str),
        workers=workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        loop="uvloop",
        http="httptools",
    )
    if workers > 1:
        # Each worker counts in its own files here, and /metrics adds them up (prometheus_client's
        # multiprocess mode): without it, a scrape would see one worker's share.
        metrics_dir = tempfile.mkdtemp(prefix="cartera-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        try:
            uvicorn.supervisors.Multiprocess(config, sockets=[config.bind_socket()]).run()
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    else:
        uvicorn.Server(config).run()
