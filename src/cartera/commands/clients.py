"""HTTP, PostgreSQL and Kafka clients for the commands, turning what goes wrong into one clear line.

Commands call these through the module (`clients.call`, `clients.database`), so tests can swap in
fakes without opening a socket; httpx takes a transport for the same purpose.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from cartera.commands.base import CommandError
from cartera.commands.connection import Connection, redact, url_env
from cartera_common.kafka import make_admin, make_consumer, make_producer
from cartera_common.settings import KafkaSettings, asyncpg_url

KAFKA_TIMEOUT_S = 15.0
DB_CONNECT_TIMEOUT_S = 5.0

# Set by tests to an httpx.MockTransport.
http_transport: httpx.BaseTransport | None = None
async_http_transport: httpx.AsyncBaseTransport | None = None


# --- HTTP -------------------------------------------------------------------------------------------


def http_client(timeout: float | httpx.Timeout = 30.0) -> httpx.Client:
    return httpx.Client(transport=http_transport, timeout=timeout)


def async_http_client(timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=async_http_transport, timeout=timeout)


def call(
    conn: Connection,
    service: str,
    method: str,
    path: str,
    *,
    key: str | None = None,
    timeout: float | httpx.Timeout = 30.0,
    **kwargs: Any,
) -> httpx.Response:
    """One request to a service; a refused connection, a timeout or an error status raise CommandError."""
    url = conn.url(service) + path
    headers = dict(kwargs.pop("headers", {}))
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        with http_client(timeout) as client:
            response = client.request(method, url, headers=headers, **kwargs)
    except httpx.TimeoutException as exc:
        raise CommandError(f"{service} at {conn.url(service)} did not answer in time ({type(exc).__name__})") from exc
    except (httpx.WriteError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
        raise CommandError(f"{service} at {conn.url(service)} broke off the request ({exc}); see its log") from exc
    except httpx.TransportError as exc:
        raise unreachable(conn, service, exc) from exc
    if response.status_code >= 400:
        raise http_error(service, response)
    return response


def unreachable(conn: Connection, service: str, exc: Exception) -> CommandError:
    return CommandError(
        f"cannot reach {service} at {conn.url(service)} ({exc or type(exc).__name__}); is it running? "
        f"(`cartera status` shows what is up; {url_env(service)} points elsewhere)"
    )


def detail(response: httpx.Response) -> str:
    """The service's own explanation: `detail` as a string or as a list of field problems."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    found = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(found, list):
        return "; ".join(
            f"{p.get('field', '?')}: {p.get('problem', p)}" if isinstance(p, dict) else str(p) for p in found
        )
    return str(found)


def http_error(service: str, response: httpx.Response) -> CommandError:
    status = response.status_code
    if status == 401:
        return CommandError(f"{service} refused the key: {detail(response)} (check CARTERA_*_KEY or --key)")
    if status == 403:
        return CommandError(f"{service} refused: {detail(response)}")
    return CommandError(f"{service} answered {status}: {detail(response)}")


def require_key(conn: Connection, given: str | None, *roles: str) -> str:
    """The key to present: --key, else the first role's key found in the environment or keys.env."""
    if given:
        return given
    for role in roles:
        if found := conn.key(role):
            return found
    names = " or ".join(f"CARTERA_{r.upper()}_KEY" for r in roles)
    raise CommandError(
        f"no {roles[0]} key: set {names}, pass --key, or run beside `cartera up` "
        f"(it saves the default workspace's keys in {conn.home / 'keys.env'})"
    )


# --- PostgreSQL ---------------------------------------------------------------------------------------


def make_engine(conn: Connection, schema: str) -> AsyncEngine:
    return create_async_engine(
        asyncpg_url(conn.database_url),
        poolclass=NullPool,
        connect_args={
            "timeout": DB_CONNECT_TIMEOUT_S,
            "server_settings": {"search_path": f"{schema},public", "application_name": "cartera-cli"},
        },
    )


@asynccontextmanager
async def database(conn: Connection, schema: str) -> AsyncIterator[AsyncEngine]:
    """An engine on one service's schema; connection and missing-schema failures become CommandError."""
    try:
        engine = make_engine(conn, schema)
    except ValueError as exc:  # a DATABASE_URL of the wrong scheme
        raise CommandError(str(exc)) from exc
    try:
        yield engine
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        raise database_error(conn, schema, exc) from exc
    finally:
        await engine.dispose()


def database_error(conn: Connection, schema: str, exc: BaseException) -> CommandError:
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    name = type(original).__name__
    if name in ("UndefinedTableError", "InvalidSchemaNameError"):
        return CommandError(
            f"the {schema} schema is not migrated in {redact(conn.database_url)}: run `cartera migrate`"
        )
    reason = str(original).strip().splitlines()[0] if str(original).strip() else name
    return CommandError(f"cannot use PostgreSQL at {redact(conn.database_url)}: {reason}")


# --- Kafka ---------------------------------------------------------------------------------------------


def kafka_settings(conn: Connection) -> KafkaSettings:
    return KafkaSettings(kafka_bootstrap_servers=conn.bootstrap)


def broker_error(conn: Connection, exc: BaseException) -> CommandError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CommandError(f"cannot use the broker at {conn.bootstrap}: {reason}")


@asynccontextmanager
async def _started(conn: Connection, client: Any, stop: Callable[[], Any]) -> AsyncIterator[Any]:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its warnings repeat the error we report
    try:
        async with asyncio.timeout(KAFKA_TIMEOUT_S):
            await client.start()
    except (KafkaError, OSError, TimeoutError) as exc:
        await stop()
        raise broker_error(conn, exc) from exc
    try:
        yield client
    except (KafkaError, OSError, TimeoutError) as exc:
        raise broker_error(conn, exc) from exc
    finally:
        await stop()


@asynccontextmanager
async def kafka_admin(conn: Connection) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = make_admin(kafka_settings(conn), client_id="cartera-cli")
    async with _started(conn, admin, admin.close) as started:
        yield started


@asynccontextmanager
async def kafka_consumer(conn: Connection) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer outside any group: it assigns partitions itself and commits nothing."""
    consumer = make_consumer(kafka_settings(conn), group_id=None, client_id="cartera-cli")
    async with _started(conn, consumer, consumer.stop) as started:
        yield started


async def offset_range(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """First and end offsets, the end as a fetch reports it.

    Tansu (the embedded broker) answers ListOffsets(latest) with the last batch's base offset + 1,
    short of the end when that batch holds several records; the high watermark in a fetch response
    is right. So the last batch is fetched and the larger of the two taken (the same on Kafka).
    """
    if not tps:
        return {}, {}
    begins, listed = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
    probe = [tp for tp in tps if listed[tp] > begins[tp]]
    seen: dict[TopicPartition, int] = {}
    if probe:
        consumer.assign(probe)
        for tp in probe:
            consumer.seek(tp, listed[tp] - 1)
        async with asyncio.timeout(KAFKA_TIMEOUT_S):
            while len(seen) < len(probe):
                await consumer.getmany(*probe, timeout_ms=200)
                seen = {tp: hw for tp in probe if (hw := consumer.highwater(tp)) is not None}
    ends = {tp: max(listed[tp], seen.get(tp, 0)) for tp in tps}
    return begins, ends


@asynccontextmanager
async def kafka_producer(conn: Connection) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(kafka_settings(conn), client_id="cartera-cli")
    async with _started(conn, producer, producer.stop) as started:
        yield started
