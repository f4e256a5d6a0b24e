"""The segmenter's batch fold: pure, so order and duplication can be checked exhaustively."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cartera_common.events import Envelope
from segmenter.domain.fold import fold

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(kind: str, customer: str = "c", minutes: int = 0, **payload: Any) -> Envelope:
    at = T0 + timedelta(minutes=minutes)
    return Envelope(
        event_id=f"{kind}-{customer}-{minutes}-{sorted(payload.items())}",
        type=kind,
        workspace_id="w",
        customer_id=customer,
        occurred_at=at,
        received_at=at,
        payload=payload,
    )


def test_an_order_and_its_refund_in_one_batch_become_one_row() -> None:
    changes = fold(
        [
            event("order_completed", order_id="o", amount="10"),
            event("order_refunded", minutes=1, order_id="o", amount="3"),
        ]
    )
    row = changes.orders[("w", "c", "o")]
    assert (row.amount, row.refunded, row.completed, row.cancelled) == (Decimal(10), Decimal(3), True, False)


def test_a_refund_before_its_order_is_kept_until_the_order_arrives() -> None:
    row = fold([event("order_refunded", order_id="o", amount="2")]).orders[("w", "c", "o")]
    assert (row.completed, row.refunded, row.amount) == (False, Decimal(2), None)


def test_the_newest_version_of_an_order_wins_whatever_the_arrival_order() -> None:
    old, new = (
        event("order_completed", order_id="o", amount="10"),
        event("order_completed", minutes=5, order_id="o", amount="12"),
    )
    assert fold([old, new]).orders[("w", "c", "o")].amount == Decimal(12)
    assert fold([new, old]).orders[("w", "c", "o")].amount == Decimal(12)


def test_newer_profile_fields_win_and_older_ones_only_fill_gaps() -> None:
    older = event("profile_updated", minutes=0, name="Old", email="a@example.com", traits={"vip": False, "tier": 1})
    newer = event("profile_updated", minutes=9, name="New", traits={"vip": True})
    for batch in ([older, newer], [newer, older]):
        p = fold(batch).profiles[("w", "c")]
        assert p.fields == {"name": "New", "email": "a@example.com"}
        assert p.traits == {"vip": True, "tier": 1}
        assert p.at == newer.occurred_at


def test_every_event_makes_the_customer_known_with_first_and_last_seen() -> None:
    changes = fold([event("interaction", minutes=7, channel="call"), event("lead_captured", minutes=2)])
    seen = changes.seen[("w", "c")]
    assert (seen.first, seen.last) == (T0 + timedelta(minutes=2), T0 + timedelta(minutes=7))


refunds = st.lists(st.integers(min_value=0, max_value=500), max_size=8)


@given(refunds=refunds, amount=st.integers(min_value=0, max_value=10_000), data=st.data())
def test_refund_totals_do_not_depend_on_arrival_order(refunds: list[int], amount: int, data: st.DataObject) -> None:
    events = [event("order_completed", order_id="o", amount=str(amount))]
    events += [event("order_refunded", minutes=i + 1, order_id="o", amount=str(r)) for i, r in enumerate(refunds)]
    shuffled = data.draw(st.permutations(events))
    row = fold(shuffled).orders[("w", "c", "o")]
    assert row.refunded == sum(Decimal(r) for r in refunds)
    assert row.amount == Decimal(amount)
