"""Why customers left and whether they answer: rules over recorded issues and contacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from segmenter.domain.reasons import (
    CALL,
    COMPLAINT,
    DELIVERY_LATE,
    TICKET,
    Issue,
    leave_reasons,
    responsiveness,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
LAST_ORDER = T0 + timedelta(days=100)
LAPSE = T0 + timedelta(days=280)


def reasons_of(*issues: Issue) -> tuple[bool, tuple[str, ...]]:
    r = leave_reasons(issues, last_order_at=LAST_ORDER, lapse_at=LAPSE, window_days=90)
    return r.unhappy, r.reasons


def at(day: int) -> datetime:
    return T0 + timedelta(days=day)


def test_an_unresolved_complaint_means_the_customer_left_unhappy() -> None:
    assert reasons_of(Issue(COMPLAINT, "k1", "quality", at(105))) == (True, ("complaint:quality",))


def test_a_complaint_resolved_before_the_lapse_is_a_reason_but_not_unhappiness() -> None:
    assert reasons_of(Issue(COMPLAINT, "k1", "quality", at(105), at(110))) == (False, ("complaint:quality",))


def test_an_old_unresolved_complaint_still_counts() -> None:
    assert reasons_of(Issue(COMPLAINT, "k1", None, at(1))) == (True, ("complaint:unspecified",))


def test_a_recent_late_delivery_means_unhappy_but_an_old_one_does_not() -> None:
    assert reasons_of(Issue(DELIVERY_LATE, "d1", "carrier", at(95)))[0] is True
    assert reasons_of(Issue(DELIVERY_LATE, "d1", "carrier", at(5))) == (False, ())


def test_tickets_and_call_reason_codes_explain_without_making_unhappy() -> None:
    got = reasons_of(Issue(TICKET, "t", "billing", at(120)), Issue(CALL, "e", "price", at(130), at(130)))
    assert got == (False, ("support_ticket:billing", "call_reason:price"))


def test_the_same_reason_is_listed_once() -> None:
    got = reasons_of(Issue(COMPLAINT, "a", "late", at(101)), Issue(COMPLAINT, "b", "late", at(102)))
    assert got == (True, ("complaint:late",))


def test_responsiveness_tells_responders_from_the_silent_and_the_never_asked() -> None:
    assert responsiveness(contacted_at=None, responded_at=None, last_order_at=None) == "unknown"
    assert responsiveness(contacted_at=at(1), responded_at=None, last_order_at=None) == "non_responder"
    assert responsiveness(contacted_at=at(1), responded_at=at(2), last_order_at=None) == "responder"
    assert responsiveness(contacted_at=at(1), responded_at=None, last_order_at=at(3)) == "responder"
    assert responsiveness(contacted_at=at(5), responded_at=None, last_order_at=at(3)) == "non_responder"
