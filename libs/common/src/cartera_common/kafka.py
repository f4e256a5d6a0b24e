"""Producer, consumer and admin factories with the settings Cartera relies on."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from cartera_common.settings import KafkaSettings


def make_producer(settings: KafkaSettings, *, client_id: str) -> AIOKafkaProducer:
    # acks=all always; idempotence only where the broker supports it (Tansu does not).
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        enable_idempotence=settings.kafka_enable_idempotence,
        request_timeout_ms=15_000,
    )


def make_consumer(settings: KafkaSettings, *, group_id: str | None, client_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        max_poll_records=None,
        fetch_max_wait_ms=100,
    )


def make_admin(settings: KafkaSettings, *, client_id: str) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id=client_id, request_timeout_ms=10_000
    )


class KeyPartitions:
    """The partition of a key, as the producer's default partitioner picks it, remembered per key:
    murmur2 is pure Python, and the same customers come back batch after batch."""

    _LIMIT = 200_000  # keys remembered per topic before the memory starts over

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._known: dict[str, tuple[list[int], dict[bytes, int]]] = {}

    async def of(self, topic: str, key: bytes) -> int:
        known = self._known.get(topic)
        if known is None:
            partitions = sorted(await self._producer.partitions_for(topic))
            known = self._known[topic] = (partitions, {})
        partitions, by_key = known
        partition = by_key.get(key)
        if partition is None:
            if len(by_key) >= self._LIMIT:
                by_key.clear()
            partition = by_key[key] = DefaultPartitioner()(key, partitions, partitions)
        return partition

    def forget(self) -> None:
        """After a new broker (its topics may have another partition count)."""
        self._known.clear()
