"""The score row of each customer, what is worth publishing, and the batch folds, pure."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartera_common.events import Envelope
from cartera_common.events.changes import CustomerChanged
from scoring.domain import leads, scorecard
from scoring.domain.bgnbd import BgNbdParams
from scoring.domain.fold import comeback, fold_changes, fold_signals
from scoring.domain.gamma_gamma import GammaGammaParams
from scoring.domain.quadrants import Thresholds
from scoring.domain.rules import DEFAULT_RULES, LookalikeRules
from scoring.domain.scorecard import Context, Customers

NOW = datetime(2026, 6, 1, tzinfo=UTC)
# The published CDNOW fits, in days (Fader, Hardie & Lee 2005 give alpha in weeks: 4.414 x 7).
PURCHASES = BgNbdParams(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
SPEND = GammaGammaParams(p=6.25, q=3.74, v=15.44)
FITTED = Context(DEFAULT_RULES, fit_id=7, purchases=PURCHASES, spend=SPEND, thresholds=Thresholds(50.0, 20.0))


def customers(**over: Any) -> Customers:
    """a: active repeat buyer; b: lapsed repeat buyer; c: one-time buyer, lost; d: a lead who asked for a demo."""
    base: dict[str, Any] = {
        "ids": ["a", "b", "c", "d"],
        "buyer": np.array([True, True, True, False]),
        "x": np.array([6.0, 4.0, 0.0, 0.0]),
        "t_x": np.array([300.0, 100.0, 0.0, 0.0]),
        "T": np.array([310.0, 400.0, 500.0, 0.0]),
        "m": np.array([40.0, 25.0, np.nan, np.nan]),
        "revenue_12m": np.array([280.0, 0.0, 0.0, 0.0]),
        "margin_12m": np.array([np.nan, np.nan, np.nan, np.nan]),
        "cost_12m": np.array([0.0, 0.0, 0.0, 0.0]),
        "margin_rate": np.array([np.nan, 0.5, np.nan, np.nan]),
        "status": ["active", "lapsed", "lost", "potential"],
        "pareto": np.array([True, False, False, False]),
        "profiles": [{"industry": "56.10"}, {}, {}, {"industry": "56.30"}],
        "activity_customer": np.array([3], dtype=np.int64),
        "activity_kind": ["demo"],
        "activity_age": np.array([0.0]),
        "activity_count": np.array([1.0]),
    }
    return Customers(**(base | over))


def rows(c: Customers, ctx: Context = FITTED) -> dict[str, dict[str, Any]]:
    return {r["customer_id"]: r for r in scorecard.decide(c, scorecard.values(c, ctx), ctx, now=NOW)}


def test_buyers_get_the_models_figures_and_a_quadrant() -> None:
    a = rows(customers())["a"]
    assert 0 < a["p_alive"] <= 1 and a["expected_30"] <= a["expected_90"] <= a["expected_365"]
    assert a["clv"] > 0 and a["fit_id"] == 7 and a["fallback"] is False
    assert a["value_now"] == 280.0 and a["quadrant"] == "retain"
    assert a["winback_worth"] is None and a["lead_score"] is None  # active: neither a win-back nor a lead


def test_the_clv_is_p_alive_times_the_value_if_alive() -> None:
    c = customers()
    v = scorecard.values(c, FITTED)
    np.testing.assert_allclose(v.clv[:3], v.p_alive[:3] * v.if_alive[:3])


def test_lapsed_and_lost_buyers_get_a_winback_decision_with_its_numbers() -> None:
    r = rows(customers())
    for cid in ("b", "c"):
        assert r[cid]["winback_worth"] is not None and r[cid]["winback_intensity"] in ("full", "light", "none")
        assert r[cid]["expected_return"] == pytest.approx(r[cid]["p_reactivation"] * r[cid]["predicted_value"])
        assert r[cid]["winback_cost"] > 0
    assert r["c"]["fallback"] is True


def test_without_history_a_repeat_buyer_comes_back_with_its_p_alive_a_one_time_buyer_with_the_repeat_rate() -> None:
    ctx = Context(DEFAULT_RULES, fit_id=7, purchases=PURCHASES, spend=SPEND, repeat_rate=0.3)
    r = rows(customers(), ctx)
    assert r["b"]["p_reactivation"] == pytest.approx(r["b"]["p_alive"])
    assert r["c"]["p_reactivation"] == pytest.approx(0.3)  # its P(alive) is 1 by the model's definition
    lots = rows(customers(), Context(DEFAULT_RULES, purchases=PURCHASES, spend=SPEND, lapsed=10**6, returned=10**5))
    assert lots["b"]["p_reactivation"] == pytest.approx(0.1, abs=1e-3)


def test_the_customers_own_margin_values_the_winback() -> None:
    r = rows(customers())
    v = scorecard.values(customers(), FITTED)
    assert r["b"]["predicted_value"] == pytest.approx(v.if_alive[1] * 0.5)


def test_a_lead_gets_a_score_its_parts_and_a_channel() -> None:
    d = rows(customers())["d"]
    assert d["p_alive"] is None and d["quadrant"] is None and d["winback_worth"] is None
    assert d["lead_engagement"] == pytest.approx(50 * (1 - math.exp(-15 / 20)))
    assert d["lead_score"] == pytest.approx(d["lead_fit"] + d["lead_engagement"] + 20 * d["lookalike"])
    assert d["lead_score"] == pytest.approx(26.38, abs=0.01)  # a demo today; no fit rules, no top customers
    assert d["channel"] == "personal_email"


def test_a_lead_like_the_top_customers_scores_higher() -> None:
    top = leads.top_profile([{"industry": "56.10"}] * 5, LookalikeRules())
    plain, like = rows(customers())["d"], rows(customers(), Context(DEFAULT_RULES, top=top))["d"]
    assert like["lookalike"] == pytest.approx(0.5)  # industry matches; size and region unknown
    assert like["lead_score"] == pytest.approx(plain["lead_score"] + 10)


def test_before_any_fit_buyers_have_value_now_only_and_leads_are_still_scored() -> None:
    r = rows(customers(), Context(DEFAULT_RULES))
    assert r["a"]["p_alive"] is None and r["a"]["fit_id"] is None and r["a"]["value_now"] == 280.0
    assert r["a"]["quadrant"] is None and r["b"]["winback_worth"] is None
    assert r["d"]["lead_score"] is not None


def test_without_thresholds_there_is_no_quadrant() -> None:
    ctx = Context(DEFAULT_RULES, fit_id=7, purchases=PURCHASES, spend=SPEND)
    assert rows(customers(), ctx)["a"]["quadrant"] is None


def test_a_buyer_is_never_a_lead_whatever_its_status_says() -> None:
    r = rows(customers(status=["potential", "lapsed", "lost", "active"]))
    assert r["a"]["lead_score"] is None
    assert r["d"]["lead_score"] is None  # the segmenter says it bought: not a lead, whatever scoring has


def test_thresholds_and_top_customers_come_from_the_workspace() -> None:
    c = customers()
    v = scorecard.values(c, FITTED)
    t = scorecard.workspace_thresholds(c, v, DEFAULT_RULES)
    assert t.value == 280.0  # the only positive value now
    assert scorecard.top_customers(c, v).tolist() == [True, False, False, False]  # the Pareto flag
    unflagged = customers(pareto=np.zeros(4, dtype=bool), revenue_12m=np.array([100.0, 10.0, 0.0, 0.0]))
    assert scorecard.top_customers(unflagged, v).tolist() == [True, False, False, False]  # the top fifth by revenue
    assert scorecard.repeat_rate(c) == pytest.approx(2 / 3)


VIEW = {"p_alive": 0.5, "quadrant": "retain", "winback_worth": None, "winback_intensity": None,
        "channel": None, "lead_score": None}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "publish"),
    [
        ({}, False),
        ({"p_alive": 0.509}, False),
        ({"p_alive": 0.51}, True),
        ({"p_alive": None}, True),
        ({"quadrant": "develop"}, True),
        ({"winback_worth": True, "winback_intensity": "light"}, True),
        ({"channel": "call"}, True),
    ],
)
def test_only_meaningful_changes_are_published(change: dict[str, Any], publish: bool) -> None:
    assert scorecard.worth_publishing(VIEW, VIEW | change) is publish


def test_lead_scores_are_published_when_they_move_a_point() -> None:
    lead = VIEW | {"p_alive": None, "quadrant": None, "lead_score": 40.0, "channel": "personal_email"}
    assert not scorecard.worth_publishing(lead, lead | {"lead_score": 40.99})
    assert scorecard.worth_publishing(lead, lead | {"lead_score": 39.0})


def test_a_first_score_is_published_only_when_it_says_something() -> None:
    assert scorecard.worth_publishing(None, VIEW)
    assert not scorecard.worth_publishing(None, dict.fromkeys(VIEW))


def test_a_row_published_before_the_new_fields_existed_is_published_again() -> None:
    assert scorecard.worth_publishing({"p_alive": 0.5}, VIEW)


@given(p=st.floats(0, 1), q=st.floats(0, 1))
def test_the_p_alive_rule_is_symmetric(p: float, q: float) -> None:
    a, b = VIEW | {"p_alive": p}, VIEW | {"p_alive": q}
    assert scorecard.worth_publishing(a, b) == scorecard.worth_publishing(b, a)


T0 = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


def event(type_: str, cid: str = "c", minutes: int = 0, ws: str = "w", **payload: Any) -> Envelope:
    at = T0 + timedelta(minutes=minutes)
    return Envelope(event_id=f"{type_}-{cid}-{minutes}", type=type_, workspace_id=ws, customer_id=cid,
                    occurred_at=at, received_at=at, payload=payload)  # fmt: skip


def test_signals_count_engagement_and_cost_per_utc_day_and_merge_profiles() -> None:
    s = fold_signals([
        event("demo_requested"), event("message_engagement", minutes=10, kind="opened"),
        event("message_engagement", minutes=20, kind="opened"), event("message_engagement", minutes=25, kind="delivered"),
        event("interaction", minutes=40, channel="visit"), event("interaction", minutes=41, channel="call"),
        event("cost_recorded", minutes=50, amount="12.5"), event("cost_recorded", minutes=51, amount="7.5"),
        event("profile_updated", minutes=1, industry="56.10", traits={"age_band": "25-34"}),
        event("profile_updated", minutes=2, region="Madrid", traits={"income_band": "high"}),
        event("order_completed", "o", order_id="1", amount="10"),
    ])  # fmt: skip
    day1, day2 = date(2026, 3, 1), date(2026, 3, 2)  # 23:30 plus 40 minutes is the next UTC day
    assert {k[2:]: (a.count, a.amount) for k, a in s.activity.items()} == {
        ("demo", day1): (1, 0), ("opened", day1): (2, 0), ("visit", day2): (1, 0), ("cost", day2): (2, Decimal("20.0")),
    }  # fmt: skip
    profile = s.profiles[("w", "c")]
    assert profile.fields == {"industry": "56.10", "region": "Madrid"}
    assert profile.traits == {"age_band": "25-34", "income_band": "high"}
    assert s.touched == {("w", "c")}  # orders are the handler's


def test_an_erased_customer_is_not_rescored() -> None:
    s = fold_signals([event("demo_requested"), event("customer_erased", minutes=1)])
    assert s.erased == {("w", "c")} and not s.touched


def changed(status: str, previous: str | None, *, cid: str = "c", minutes: int = 0, **snapshot: Any) -> Envelope:
    payload = {"changes": ["status"], "previous": {"status": previous}, "customer": {"status": status, **snapshot}}
    return event("customer_changed", cid, minutes, **payload)


def test_comebacks_count_lapses_and_returns() -> None:
    c = fold_changes([
        changed("lapsed", "active", cid="a"), changed("lost", "lapsed", cid="a", minutes=1),
        changed("reactivated", "lost", cid="a", minutes=2), changed("reactivated", None, cid="b"),
        changed("lapsed", None, cid="c"), changed("active", "new", cid="d"),
    ])  # fmt: skip
    assert (c.lapsed["w"], c.returned["w"]) == (3, 2)


def test_the_latest_standing_wins_whatever_the_order_in_the_batch() -> None:
    c = fold_changes([
        changed("lapsed", "active", minutes=5, tier="high", pareto=True, industry="56"),
        changed("active", "new", minutes=1),
    ])  # fmt: skip
    s = c.standings[("w", "c")]
    assert (s.status, s.tier, s.pareto, s.industry) == ("lapsed", "high", True, "56")


def test_a_change_without_a_status_change_counts_no_comeback() -> None:
    e = event("customer_changed", changes=["tier"], previous={"tier": "low"}, customer={"status": "lapsed"})
    assert comeback(CustomerChanged.model_validate(e.payload)) == (0, 0)
    assert fold_changes([e]).lapsed["w"] == 0


def test_each_buyer_gets_a_next_purchase_date_sooner_for_frequent_buyers_and_none_for_leads() -> None:
    found = rows(customers())
    assert found["d"]["next_purchase_at"] is None  # a lead: no model figures at all
    a, b, c = (found[k]["next_purchase_at"] for k in "abc")
    assert a is not None and b is not None and c is not None
    assert NOW < a < b < c  # six orders in 310 days comes back sooner than four in 400, or one in 500


def test_the_value_horizon_is_the_workspaces_to_set() -> None:
    from scoring.domain.rules import ScoringRules, ValueRules

    longer = Context(ScoringRules(value=ValueRules(clv_months=24)), fit_id=7, purchases=PURCHASES, spend=SPEND)
    short, long = rows(customers()), rows(customers(), longer)
    assert long["a"]["clv"] > short["a"]["clv"] > 0
    undiscounted = Context(
        ScoringRules(value=ValueRules(monthly_discount_rate=0)), fit_id=7, purchases=PURCHASES, spend=SPEND
    )
    assert rows(customers(), undiscounted)["a"]["clv"] > short["a"]["clv"]


def test_a_workspace_with_a_winback_record_uses_it_for_the_chance_of_a_comeback() -> None:
    from dataclasses import replace

    general = rows(customers(), replace(FITTED, lapsed=100, returned=5))["b"]["p_reactivation"]
    record = replace(FITTED, lapsed=100, returned=5, winbacks=200, winbacks_won=120)
    proven = rows(customers(), record)["b"]["p_reactivation"]
    assert general is not None and proven is not None
    assert general < 0.2 < 0.5 < proven  # 5 % came back on their own; 60 % of win-backs worked
