"""The one envelope every Kafka message carries, keyed `workspace:customer`."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
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
        # Built by hand: this runs once per event at intake, where model_dump's cost shows.
        return orjson.dumps(
            {
                "event_id": self.event_id,
                "type": self.type,
                "schema_version": self.schema_version,
                "workspace_id": self.workspace_id,
                "customer_id": self.customer_id,
                "occurred_at": self.occurred_at,
                "received_at": self.received_at,
                "source": self.source,
                "payload": self.payload,
            },
            option=orjson.OPT_UTC_Z,
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)


# Messages a service derives from its own state get ids named by what they say, in one namespace.
_DERIVED_NAMESPACE = uuid.UUID("0b6c1f7e-52a4-4d7e-8f0e-1c1e3f8a2b90")


def derived_envelope(
    event_type: str,
    *,
    workspace_id: str,
    customer_id: str,
    payload: dict[str, Any],
    at: datetime,
    source: str,
    identity: str,
) -> Envelope:
    """A message a service publishes about a customer (a change, a score), with a deterministic id:
    `identity` names this message among all the source's messages, so a retried transaction
    stages the same id and the outbox keeps it once."""
    return Envelope.model_construct(
        event_id=str(uuid.uuid5(_DERIVED_NAMESPACE, f"{source}:{workspace_id}:{customer_id}:{identity}")),
        type=event_type,
        schema_version=SCHEMA_VERSION,
        workspace_id=workspace_id,
        customer_id=customer_id,
        occurred_at=at,
        received_at=at,
        source=source,
        payload=payload,
    )


def message_key(workspace_id: str, customer_id: str) -> str:
    """Every topic is keyed this way, so one customer's messages stay in order on one partition."""
    return f"{workspace_id}:{customer_id}"


def content_event_id(workspace_id: str, body: bytes) -> str:
    """A name-based (version 5) UUID of workspace and canonical body, hashed without re-encoding.

    Formatted by hand: `str(uuid.UUID(...))` cost more than the hash itself at intake."""
    digest = bytearray(
        hashlib.sha1(_CONTENT_NAMESPACE.bytes + workspace_id.encode() + b":" + body, usedforsecurity=False).digest()
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An accepted event already in its envelope's bytes (exactly `Envelope.to_bytes()`), with what
    intake needs to know of it. Intake writes these straight to its log: building an `Envelope`
    only to serialise it again cost more than validating the event."""

    event_id: str
    type: str
    workspace_id: str
    customer_id: str
    value: bytes

    @property
    def key(self) -> str:
        return message_key(self.workspace_id, self.customer_id)


_ENVELOPE_FIELDS = ("type", "customer_id", "event_id", "occurred_at", "source")


def encode_incoming(
    event: IncomingBase, *, workspace_id: str, received_at: datetime, source: str | None = None
) -> EncodedEvent:
    """Wraps a validated HTTP event; its id comes from the client, the content, or a fresh UUID."""
    data = event.model_dump(mode="json", exclude_none=True)
    if event.event_id:
        event_id = event.event_id
    elif event.occurred_at is not None:
        event_id = content_event_id(workspace_id, orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    else:
        event_id = str(uuid.uuid4())
    kind = data["type"]
    for envelope_field in _ENVELOPE_FIELDS:
        data.pop(envelope_field, None)
    value = orjson.dumps(
        {
            "event_id": event_id,
            "type": kind,
            "schema_version": SCHEMA_VERSION,
            "workspace_id": workspace_id,
            "customer_id": event.customer_id,
            "occurred_at": event.occurred_at or received_at,
            "received_at": received_at,
            "source": event.source or source,
            "payload": data,
        },
        option=orjson.OPT_UTC_Z,
    )
    return EncodedEvent(event_id, kind, workspace_id, event.customer_id, value)


def envelope_from_incoming(
    event: IncomingBase, *, workspace_id: str, received_at: datetime, source: str | None = None
) -> Envelope:
    """The envelope consumers will read for a validated HTTP event (intake itself keeps the bytes)."""
    encoded = encode_incoming(event, workspace_id=workspace_id, received_at=received_at, source=source)
    return Envelope.from_bytes(encoded.value)
