"""The events the whole system understands: the flat HTTP form and the Kafka envelope."""

from cartera_common.events.catalogue import (
    EVENT_TYPES,
    INCOMING_EVENT,
    IncomingEvent,
    parse_payload,
)
from cartera_common.events.envelope import Envelope, envelope_from_incoming
from cartera_common.events.errors import FieldError, field_errors

__all__ = [
    "EVENT_TYPES",
    "INCOMING_EVENT",
    "Envelope",
    "FieldError",
    "IncomingEvent",
    "envelope_from_incoming",
    "field_errors",
    "parse_payload",
]
