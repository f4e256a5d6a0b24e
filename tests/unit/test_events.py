"""The catalogue and the envelope: what the HTTP edge accepts and what goes on Kafka."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from cartera_common.events import EVENT_TYPES, INCOMING_EVENT, Envelope, envelope_from_incoming, field_errors

NOW = datetime(2026, 11, 25, tzinfo=UTC)
ORDER = {
    "type": "order_completed",
    "customer_id": "c-1",
    "occurred_at": "2026-11-20T10:00:00Z",
    "order_id": "o-1",
    "amount": 42.5,
}


def errors_of(body: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as exc:
        INCOMING_EVENT.validate_python(body)
    return [(e["field"], e["problem"]) for e in field_errors(exc.value)]


def test_the_catalogue_covers_every_kind_of_event_the_design_names() -> None:
    assert len(EVENT_TYPES) == 23
    assert {
        "order_completed",
        "interaction",
        "complaint_opened",
        "delivery_late",
        "opportunity_won",
        "profile_updated",
        "consent_changed",
        "cost_recorded",
        "message_engagement",
        "customer_erased",
    } <= EVENT_TYPES


def test_unknown_types_are_rejected_naming_the_type_field() -> None:
    [(field, problem)] = errors_of({"type": "order_teleported", "customer_id": "c"})
    assert field == "type"
    assert "order_teleported" in problem


def test_a_bad_field_is_named_with_its_problem() -> None:
    assert errors_of(ORDER | {"amount": -1, "currency": "euro"}) == [
        ("amount", "Input should be greater than or equal to 0"),
        ("currency", "String should match pattern '^[A-Z]{3}$'"),
    ]


def test_a_naive_timestamp_is_rejected() -> None:
    assert errors_of(ORDER | {"occurred_at": "2026-11-20T10:00:00"})[0][0] == "occurred_at"


def test_an_unknown_time_zone_is_rejected() -> None:
    assert errors_of({"type": "profile_updated", "customer_id": "c", "time_zone": "Mars/Olympus"})[0][0] == "time_zone"


def test_extra_fields_are_kept_in_the_payload() -> None:
    env = envelope_from_incoming(
        INCOMING_EVENT.validate_python(ORDER | {"store": "Madrid-3"}), workspace_id="w", received_at=NOW
    )
    assert env.payload["store"] == "Madrid-3"


def test_the_same_content_gets_the_same_id_and_different_content_another() -> None:
    def eid(body: dict[str, object], ws: str = "w") -> str:
        return envelope_from_incoming(INCOMING_EVENT.validate_python(body), workspace_id=ws, received_at=NOW).event_id

    assert eid(ORDER) == eid(dict(reversed(list(ORDER.items()))))
    assert eid(ORDER) != eid(ORDER | {"amount": 43})
    assert eid(ORDER) != eid(ORDER, ws="other")
    assert eid(ORDER | {"event_id": "mine"}) == "mine"


def test_without_occurred_at_each_post_is_a_new_event_at_receipt_time() -> None:
    body = {k: v for k, v in ORDER.items() if k != "occurred_at"}
    a = envelope_from_incoming(INCOMING_EVENT.validate_python(body), workspace_id="w", received_at=NOW)
    b = envelope_from_incoming(INCOMING_EVENT.validate_python(body), workspace_id="w", received_at=NOW)
    assert a.event_id != b.event_id
    assert a.occurred_at == NOW


def test_the_envelope_round_trips_through_bytes_and_is_keyed_by_workspace_and_customer() -> None:
    env = envelope_from_incoming(INCOMING_EVENT.validate_python(ORDER), workspace_id="w", received_at=NOW)
    assert Envelope.from_bytes(env.to_bytes()) == env
    assert env.key == "w:c-1"


def test_a_nul_character_anywhere_is_refused_naming_where() -> None:
    assert errors_of({"type": "profile_updated", "customer_id": "c\x00"}) == [
        ("customer_id", "must not contain the NUL character (U+0000)")
    ]
    assert (
        errors_of({"type": "profile_updated", "customer_id": "c", "traits": {"a": ["ok", "x\x00"]}})[0][0]
        == "traits.a.1"
    )
