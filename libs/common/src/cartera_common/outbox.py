"""Writing what a service publishes in the same transaction as its state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cartera_common.events.envelope import Envelope
from cartera_common.tracing import trace_for


@dataclass(frozen=True, slots=True)
class OutMessage:
    topic: str
    key: str
    value: bytes
    workspace_id: str
    message_id: str
    traceparent: str | None = None  # sent as the Kafka header `traceparent`

    @classmethod
    def of(cls, topic: str, envelope: Envelope, traceparent: str | None = None) -> OutMessage:
        """A message about a customer joins the trace being applied for that customer, unless told otherwise."""
        trace = traceparent or trace_for(envelope.workspace_id, envelope.customer_id)
        return cls(topic, envelope.key, envelope.to_bytes(), envelope.workspace_id, envelope.event_id, trace)


_INSERT = text(
    """
    INSERT INTO outbox (workspace_id, message_id, topic, key, value, headers)
    SELECT ws, id, topic, key, value, CASE WHEN tp IS NULL THEN NULL ELSE jsonb_build_object('traceparent', tp) END
    FROM unnest(CAST(:ws AS text[]), CAST(:ids AS text[]), CAST(:topics AS text[]),
                CAST(:keys AS text[]), CAST(:values AS bytea[]), CAST(:traces AS text[])) AS t(ws, id, topic, key, value, tp)
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
            "traces": [m.traceparent for m in messages],
        },
    )
    return {row[0] for row in result}
