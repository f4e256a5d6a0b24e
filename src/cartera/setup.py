"""Start-up steps shared by `cartera up` and the test fixtures: migrate, create topics, bootstrap keys."""

from __future__ import annotations

import asyncio

from cartera.services import SERVICES
from cartera_common.access import Role
from cartera_common.clock import SystemClock
from cartera_common.kafka import make_admin
from cartera_common.migrations import upgrade
from cartera_common.settings import KafkaSettings, ServiceSettings
from cartera_common.topics import ensure_topics


def migrate_all(database_url: str) -> None:
    for spec in SERVICES:
        upgrade(database_url, spec.name)


async def create_topics(settings: KafkaSettings) -> list[str]:
    admin = make_admin(settings, client_id="cartera-setup")
    await admin.start()
    try:
        return await ensure_topics(
            admin, partitions=settings.cartera_partitions, replication=settings.cartera_replication_factor
        )
    finally:
        await admin.close()


async def bootstrap_keys(database_url: str) -> dict[Role, str]:
    from cartera_common.db import create_engine
    from ingest.bootstrap import ensure_default_workspace
    from ingest.settings import IngestSettings

    settings = IngestSettings(database_url=database_url)
    engine = create_engine(settings, schema="ingest")
    try:
        return await ensure_default_workspace(engine, settings, SystemClock())
    finally:
        await engine.dispose()


def prepare(database_url: str, bootstrap_servers: str) -> dict[Role, str]:
    """Everything that must be true before a service starts; returns keys generated on first start."""
    migrate_all(database_url)
    kafka = ServiceSettings(database_url=database_url, kafka_bootstrap_servers=bootstrap_servers)
    asyncio.run(create_topics(kafka))
    return asyncio.run(bootstrap_keys(database_url))
