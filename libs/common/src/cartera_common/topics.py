"""The topics of the system, created explicitly so partition counts never come from auto-creation."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

EVENTS = "events"
ACCESS = "access"
CUSTOMER_CHANGES = "customer-changes"
SCORES = "scores"
CAMPAIGN_OUTCOMES = "campaign-outcomes"

MAIN_TOPICS = (EVENTS, ACCESS, CUSTOMER_CHANGES, SCORES, CAMPAIGN_OUTCOMES)


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


ALL_TOPICS = MAIN_TOPICS + tuple(dlq(t) for t in MAIN_TOPICS)


async def ensure_topics(admin: AIOKafkaAdminClient, *, partitions: int, replication: int) -> list[str]:
    """Creates whichever topics are missing; returns the names it created."""
    existing = set(await admin.list_topics())  # list_topics never auto-creates; describe does
    missing = [t for t in ALL_TOPICS if t not in existing]
    if not missing:
        return []
    try:
        await admin.create_topics([NewTopic(t, partitions, replication) for t in missing])
    except TopicAlreadyExistsError:
        pass  # another service created them first
    return missing
