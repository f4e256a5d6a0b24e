"""The scoring API's shaping of rows and its lead cursors, without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import HTTPException

from scoring.api import Score, _score_out
from scoring.api_leads import _decode_cursor, _encode_cursor

AT = datetime(2026, 1, 1, tzinfo=UTC)
BASE: dict[str, Any] = {
    "workspace_id": "w", "customer_id": "c", "p_alive": 0.2, "expected_30": 0.1, "expected_90": 0.3,
    "expected_365": 1.0, "expected_order_value": 40.0, "clv": 30.0, "fallback": False, "fit_id": 3,
    "scored_at": AT, "value_now": 0.0, "quadrant": "abandon", "quadrant_reason": "low value now, low potential",
    "winback_worth": None, "winback_intensity": None, "p_reactivation": None, "predicted_value": None,
    "expected_return": None, "winback_cost": None, "lead_score": None, "lead_fit": None, "lead_engagement": None,
    "lookalike": None, "channel": None, "published": {}, "publish_seq": 2,
}  # fmt: skip


def test_a_lapsed_customers_row_shows_the_winback_and_no_lead() -> None:
    row = BASE | {"winback_worth": True, "winback_intensity": "light", "p_reactivation": 0.1,
                  "predicted_value": 150.0, "expected_return": 15.0, "winback_cost": 0.9}  # fmt: skip
    out = Score.model_validate(_score_out(row))
    assert out.winback is not None and out.winback.intensity == "light" and out.winback.cost == 0.9
    assert out.lead is None and out.quadrant == "abandon"


def test_a_leads_row_shows_the_lead_and_no_model() -> None:
    model = ("p_alive", "expected_30", "expected_90", "expected_365", "expected_order_value", "clv", "fallback")
    row = BASE | dict.fromkeys((*model, "fit_id", "value_now", "quadrant", "quadrant_reason"))
    row |= {"lead_score": 56.3, "lead_fit": 15.0, "lead_engagement": 41.3, "lookalike": 0.0, "channel": "call"}
    out = Score.model_validate(_score_out(row))
    assert out.lead is not None and out.lead.channel == "call" and out.winback is None and out.p_alive is None


def test_a_lead_cursor_round_trips_and_anything_else_is_refused() -> None:
    assert _decode_cursor(_encode_cursor(41.25, "cust:1")) == (41.25, "cust:1")
    for bad in ("", "nope", _encode_cursor(1.0, "x")[:-3] + "!!!"):
        with pytest.raises(HTTPException) as refused:
            _decode_cursor(bad)
        assert refused.value.status_code == 422
