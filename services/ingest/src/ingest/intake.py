"""Validating events and writing them to the intake log: once there, they are durable."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from cartera_common.events import (
    EVENT_TYPES,
    INCOMING_EVENT,
    Envelope,
    FieldError,
    envelope_from_incoming,
    field_errors,
)
from cartera_common.metrics import INTAKE
from cartera_common.outbox import OutMessage, emit
from cartera_common.runtime import ServiceRuntime
from cartera_common.topics import EVENTS


def validate(
    items: Sequence[Any], *, workspace_id: str, received_at: datetime
) -> tuple[list[Envelope], list[tuple[int, list[FieldError]]]]:
    """Splits a batch into envelopes and per-index errors; one bad item never sinks the rest."""
    good: list[Envelope] = []
    bad: list[tuple[int, list[FieldError]]] = []
    for index, item in enumerate(items):
        try:
            event = INCOMING_EVENT.validate_python(item)
        except ValidationError as exc:
            bad.append((index, field_errors(exc)))
            INTAKE.labels(_type_label(item), "rejected").inc()
            continue
        good.append(envelope_from_incoming(event, workspace_id=workspace_id, received_at=received_at))
    return good, bad


async def append(runtime: ServiceRuntime, envelopes: Sequence[Envelope]) -> int:
    """Writes the events to the intake log in one transaction; returns how many were new."""
    if not envelopes:
        return 0
    relay = runtime.relay
    async with runtime.engine.begin() as conn:
        new = await emit(conn, [OutMessage.of(EVENTS, e) for e in envelopes], notify=not relay.is_leader)
    relay.wake()
    for e in envelopes:
        INTAKE.labels(e.type, "accepted" if e.event_id in new else "duplicate").inc()
    return len(new)


def _type_label(item: Any) -> str:
    kind = item.get("type") if isinstance(item, dict) else None
    return kind if isinstance(kind, str) and kind in EVENT_TYPES else "unknown"
