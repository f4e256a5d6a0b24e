"""Notices when the broker came back empty, so relays republish and consumers rewind.

The embedded broker keeps nothing across a restart. The first relay to find no epoch marker
recreates the topics and then creates a marker topic named after a fresh epoch; everyone reads
the epoch from the topic list alone (a metadata call that never auto-creates anything).
"""

from __future__ import annotations

import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from cartera_common.topics import ensure_topics

MARKER_PREFIX = "_cartera_epoch_"


async def current_epoch(admin: AIOKafkaAdminClient) -> str | None:
    markers = sorted(t for t in await admin.list_topics() if t.startswith(MARKER_PREFIX))
    # Two relays racing may both create a marker; the smallest name wins for everyone.
    return markers[0][len(MARKER_PREFIX) :] if markers else None


async def establish_epoch(admin: AIOKafkaAdminClient, *, partitions: int, replication: int) -> str:
    """Returns the broker's epoch, creating topics and the marker when the broker is new."""
    epoch = await current_epoch(admin)
    if epoch is not None:
        return epoch
    await ensure_topics(admin, partitions=partitions, replication=replication)
    try:
        await admin.create_topics([NewTopic(MARKER_PREFIX + uuid.uuid4().hex, 1, 1)])
    except TopicAlreadyExistsError:
        pass
    epoch = await current_epoch(admin)
    assert epoch is not None
    return epoch
