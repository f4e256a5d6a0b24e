"""The one envelope every Kafka message carries, keyed `workspace:customer`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict

from cartera_common.events.base import IncomingBase
from cartera_common.events.catalogue import SCHEMA_VERSION

# Content-derived ids live in their own namespace so they never collide with client UUIDs.
_CONTENT_NAMESPACE = uuid.UUID("6f1d3c1e-8b7a-4b8e-9a51-3c2f0e6a9d10")


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    type: str
    schema_version: int = SCHEMA_VERSION
    workspace_id: str
    customer_id: str
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    source: str | None = None
    payload: dict[str, Any]

    @property
    def key(self) -> str:
        return message_key(self.workspace_id, self.customer_id)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)


def message_key(workspace_id: str, customer_id: str) -> str:
    """Every topic is keyed this way, so one customer's messages stay in order on one partition."""
    return f"{workspace_id}:{customer_id}"


def content_event_id(workspace_id: str, body: bytes) -> str:
    return str(uuid.uuid5(_CONTENT_NAMESPACE, workspace_id + ":" + body.decode()))


def envelope_from_incoming(
    event: IncomingBase, *, workspace_id: str, received_at: datetime, source: str | None = None
) -> Envelope:
    """Wraps a validated HTTP event; ids come from the client, the content, or a fresh UUID."""
    data = event.model_dump(mode="json", exclude_none=True)
    if event.event_id:
        event_id = event.event_id
    elif event.occurred_at is not None:
        event_id = content_event_id(workspace_id, orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    else:
        event_id = str(uuid.uuid4())
    return Envelope(
        event_id=event_id,
        type=data["type"],
        workspace_id=workspace_id,
        customer_id=event.customer_id,
        occurred_at=event.occurred_at or received_at,
        received_at=received_at,
        source=event.source or source,
        payload=event.payload(),
    )
