"""Validating events and writing them to the intake log: once there, they are durable."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cartera_common.events import (
    EVENT_TYPES,
    INCOMING_EVENT,
    FieldError,
    IncomingEvent,
    field_errors,
)
from cartera_common.events.envelope import EncodedEvent, encode_incoming
from cartera_common.metrics import INTAKE
from cartera_common.outbox import OutMessage, emit
from cartera_common.runtime import ServiceRuntime
from cartera_common.topics import EVENTS
from cartera_common.tracing import trace_for

# A whole batch in one call: about a third cheaper per event than one call per item.
_BATCH: TypeAdapter[list[IncomingEvent]] = TypeAdapter(list[IncomingEvent])


def validate(
    items: Sequence[Any], *, workspace_id: str, received_at: datetime
) -> tuple[list[EncodedEvent], list[tuple[int, list[FieldError]]]]:
    """Splits a batch into encoded events and per-index errors; one bad item never sinks the rest."""
    try:
        events = _BATCH.validate_python(items)
    except ValidationError:
        return _validate_each(items, workspace_id=workspace_id, received_at=received_at)
    return [encode_incoming(e, workspace_id=workspace_id, received_at=received_at) for e in events], []


def _validate_each(
    items: Sequence[Any], *, workspace_id: str, received_at: datetime
) -> tuple[list[EncodedEvent], list[tuple[int, list[FieldError]]]]:
    good: list[EncodedEvent] = []
    bad: list[tuple[int, list[FieldError]]] = []
    rejected: Counter[str] = Counter()
    for index, item in enumerate(items):
        try:
            event = INCOMING_EVENT.validate_python(item)
        except ValidationError as exc:
            bad.append((index, field_errors(exc)))
            rejected[_type_label(item)] += 1
            continue
        good.append(encode_incoming(event, workspace_id=workspace_id, received_at=received_at))
    for kind, n in rejected.items():
        INTAKE.labels(kind, "rejected").inc(n)
    return good, bad


async def append(runtime: ServiceRuntime, events: Sequence[EncodedEvent]) -> int:
    """Writes the events to the intake log in one transaction; returns how many were new.

    When this process publishes the log, the write is one statement that is its own transaction
    (autocommit): durable when it returns, as 202 promises, without a BEGIN and a COMMIT round
    trip, and never left open while the event loop serves other requests, which would hold the
    relay's horizon back. Otherwise the NOTIFY that wakes the publishing replica must commit with
    the rows, so both go in one transaction."""
    if not events:
        return 0
    relay = runtime.relay
    messages = outbox_messages(events)
    if relay.is_leader:
        async with runtime.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            new = await emit(autocommit, messages, notify=False)
    else:
        async with runtime.engine.begin() as conn:
            new = await emit(conn, messages, notify=True)
    relay.wake()
    counts = Counter((e.type, "accepted" if e.event_id in new else "duplicate") for e in events)
    for (kind, result), n in counts.items():
        INTAKE.labels(kind, result).inc(n)
    return len(new)


def outbox_messages(events: Sequence[EncodedEvent]) -> list[OutMessage]:
    """The intake log's rows for the events, each carrying the trace of the request that sent it."""
    return [
        OutMessage(EVENTS, e.key, e.value, e.workspace_id, e.event_id, trace_for(e.workspace_id, e.customer_id))
        for e in events
    ]


def _type_label(item: Any) -> str:
    kind = item.get("type") if isinstance(item, dict) else None
    return kind if isinstance(kind, str) and kind in EVENT_TYPES else "unknown"
