"""Writing what a service publishes in the same transaction as its state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.events.envelope import Envelope


@dataclass(frozen=True, slots=True)
class OutMessage:
    topic: str
    key: str
    value: bytes
    workspace_id: str
    message_id: str

    @classmethod
    def of(cls, topic: str, envelope: Envelope) -> OutMessage:
        return cls(topic, envelope.key, envelope.to_bytes(), envelope.workspace_id, envelope.event_id)


_INSERT = text(
    """
    INSERT INTO outbox (workspace_id, message_id, topic, key, value)
    SELECT * FROM unnest(CAST(:ws AS text[]), CAST(:ids AS text[]), CAST(:topics AS text[]),
                         CAST(:keys AS text[]), CAST(:values AS bytea[]))
    ON CONFLICT ON CONSTRAINT uq_outbox_message DO NOTHING
    RETURNING message_id
    """
)


_NOTIFY = text("SELECT pg_notify('outbox_' || current_schema(), '')")


async def emit(conn: AsyncConnection, messages: Sequence[OutMessage], *, notify: bool = True) -> set[str]:
    """Stages messages for the relay; returns the ids that were new (a repeat id is a no-op).

    `notify` wakes whichever replica's relay is publishing, on commit. A writer whose own
    process holds the publishing relay wakes it in-process instead (`OutboxRelay.wake`): NOTIFY
    takes a global lock at commit, which on the intake path would serialise every commit.
    """
    if not messages:
        return set()
    if notify:
        await conn.execute(_NOTIFY)
    result = await conn.execute(
        _INSERT,
        {
            "ws": [m.workspace_id for m in messages],
            "ids": [m.message_id for m in messages],
            "topics": [m.topic for m in messages],
            "keys": [m.key for m in messages],
            "values": [m.value for m in messages],
        },
    )
    return {row[0] for row in result}
