"""Summaries from orders, the holdout count, and the discounted CLV against `lifetimes`."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.domain import bgnbd, clv, gamma_gamma
from scoring.domain.bgnbd import BgNbdParams
from scoring.domain.gamma_gamma import GammaGammaParams

Array = np.ndarray
WEEK = np.timedelta64(7, "D")
END = np.datetime64("2024-01-31")

# a: two orders on 1 January (one purchase of 15), then 20 and 40, then one after the cut-off;
# b: two orders on one day and nothing else; c: only after the cut-off.
ORDERS = [
    ("b", "2024-01-20T09:00", 7.0),
    ("a", "2024-01-01T10:00", 10.0),
    ("a", "2024-01-01T15:00", 5.0),
    ("a", "2024-01-05T12:00", 20.0),
    ("b", "2024-01-20T18:00", 8.0),
    ("a", "2024-01-10T08:00", 40.0),
    ("a", "2024-02-01T09:00", 99.0),
    ("a", "2024-02-01T19:00", 1.0),
    ("a", "2024-03-05T09:00", 1.0),
    ("c", "2024-02-02T09:00", 30.0),
]


def _orders() -> tuple[Array, Array, Array]:
    ids, dates, amounts = zip(*ORDERS, strict=True)
    return np.array(ids), np.array(dates, dtype="datetime64[us]"), np.array(amounts)


def _datasets() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.origin is not None, "the dev extra installs lifetimes"
    return Path(spec.origin).parent / "datasets"


def test_same_day_orders_count_once_and_the_cut_off_is_respected() -> None:
    s = clv.summarise(*_orders(), calibration_end=END + np.timedelta64(1, "D") - np.timedelta64(1, "us"))
    assert s.customer_ids.tolist() == ["a", "b"]  # c ordered only after the cut-off
    assert s.x.tolist() == [2.0, 0.0]
    assert s.t_x.tolist() == [9.0, 0.0]  # days from 1 to 10 January
    assert s.T.tolist() == [30.0, 11.0]  # to 31 January
    assert s.m[0] == 30.0 and np.isnan(s.m[1])  # repeat purchases 20 and 40; b has none


def test_the_cut_off_is_an_instant() -> None:
    s = clv.summarise(*_orders(), calibration_end=np.datetime64("2024-01-10T07:00"))
    assert s.x.tolist() == [1.0]  # the order at 08:00 on the 10th is not known yet
    assert s.T.tolist() == [9.0]


def test_weekly_periods_merge_orders_and_add_their_amounts() -> None:
    # Weeks count from the Unix epoch, a Thursday: 5 and 10 January 2024 are in one week.
    s = clv.summarise(*_orders(), calibration_end=END, period=WEEK)
    assert s.x.tolist() == [1.0, 0.0]
    assert s.t_x.tolist() == [1.0, 0.0]
    assert s.T.tolist() == [4.0, 1.0]
    assert s.m[0] == 60.0


def test_times_can_be_reported_in_another_unit() -> None:
    s = clv.summarise(*_orders(), calibration_end=END, unit=WEEK)
    np.testing.assert_allclose(s.t_x, [9 / 7, 0.0])
    np.testing.assert_allclose(s.T, [30 / 7, 11 / 7])


def test_summaries_without_amounts_or_orders() -> None:
    ids, dates, _ = _orders()
    s = clv.summarise(ids, dates, None, calibration_end=END)
    assert s.x.tolist() == [2.0, 0.0] and s.m[0] == 0.0
    empty = clv.summarise(ids[:0], dates[:0], None, calibration_end=END)
    assert empty.x.size == 0 and empty.customer_ids.size == 0


def test_holdout_purchases_count_periods_after_the_cut_off() -> None:
    ids, dates, amounts = _orders()
    s = clv.summarise(ids, dates, amounts, calibration_end=END)
    got = clv.holdout_purchases(s, ids, dates, calibration_end=END, holdout_end=np.datetime64("2024-02-29"))
    assert got.tolist() == [1.0, 0.0]  # a's two orders on 1 February are one purchase; c is not summarised


def test_summaries_agree_with_lifetimes_on_random_orders() -> None:
    rng = np.random.default_rng(5)
    ids = np.repeat(np.arange(2_000), 1 + rng.poisson(3.0, 2_000))
    dates = np.datetime64("2023-01-01") + rng.integers(0, 400, ids.size).astype("timedelta64[D]")  # many same-day
    amounts = np.round(rng.gamma(6.0, 5.0, ids.size), 2)
    ours = clv.summarise(ids, dates, amounts, calibration_end=np.datetime64("2023-12-31"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes.utils import summary_data_from_transaction_data

        frame = pd.DataFrame({"id": ids, "date": dates, "amount": amounts})
        theirs = summary_data_from_transaction_data(frame, "id", "date", "amount", observation_period_end="2023-12-31")
    assert ours.customer_ids.tolist() == theirs.index.tolist()
    np.testing.assert_array_equal(ours.x, theirs["frequency"].to_numpy())
    np.testing.assert_array_equal(ours.t_x, theirs["recency"].to_numpy())
    np.testing.assert_array_equal(ours.T, theirs["T"].to_numpy())
    np.testing.assert_allclose(np.nan_to_num(ours.m), theirs["monetary_value"].to_numpy(), rtol=1e-12)


@pytest.fixture(scope="module")
def cdnow_orders() -> tuple[Array, Array, Array]:
    """The 6,919 orders of the CDNOW sample (Fader, Hardie & Lee's 1/10th of the cohort)."""
    raw = np.loadtxt(_datasets() / "CDNOW_sample.txt", dtype=str)
    dates = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in raw[:, 2]], dtype="datetime64[D]")
    return raw[:, 1].astype(int), dates, raw[:, 4].astype(float)


CALIBRATION_END = np.datetime64("1997-09-30")  # the paper's 39 calibration weeks
HOLDOUT_END = np.datetime64("1998-06-30")  # and 39 holdout weeks


def test_summarising_the_cdnow_orders_reproduces_the_published_summary(
    cdnow_orders: tuple[Array, Array, Array],
) -> None:
    s = clv.summarise(*cdnow_orders, calibration_end=CALIBRATION_END, unit=WEEK)
    published = np.loadtxt(_datasets() / "cdnow_customers_summary_with_transactions.csv", delimiter=",", skiprows=1)
    assert s.customer_ids.tolist() == published[:, 0].astype(int).tolist()
    assert s.x.tolist() == published[:, 1].tolist()  # 6,919 orders, 6,696 distinct customer-days
    np.testing.assert_allclose(s.t_x, published[:, 2], atol=0.005)  # published rounded to 2 decimals
    np.testing.assert_allclose(s.T, published[:, 3], atol=0.005)
    np.testing.assert_allclose(np.where(s.x > 0, s.m, 0.0), published[:, 4], atol=0.005)


def test_cdnow_holdout_purchases_are_close_to_the_prediction(cdnow_orders: tuple[Array, Array, Array]) -> None:
    s = clv.summarise(*cdnow_orders, calibration_end=CALIBRATION_END, unit=WEEK)
    actual = clv.holdout_purchases(s, *cdnow_orders[:2], calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END)
    fit = bgnbd.fit(s.x, s.t_x, s.T)
    predicted = bgnbd.conditional_expected_purchases(fit.params, 39.0, s.x, s.t_x, s.T)
    # 1,653 predicted against 1,882 repeat purchase-days: a check on gross errors, not a claim of accuracy.
    assert actual.sum() == 1882
    assert 0.85 < predicted.sum() / actual.sum() < 1.0


def test_cdnow_clv_agrees_with_lifetimes() -> None:
    table = np.loadtxt(_datasets() / "cdnow_customers_summary_with_transactions.csv", delimiter=",", skiprows=1)
    x, t_x, T, m = table[:, 1], table[:, 2], table[:, 3], table[:, 4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter

        purchases = BetaGeoFitter().fit(x, t_x, T)
        spend = GammaGammaFitter().fit(x[x > 0], m[x > 0])
        frame = pd.DataFrame({"x": x, "t_x": t_x, "T": T, "m": m})
        theirs = spend.customer_lifetime_value(
            purchases, frame["x"], frame["t_x"], frame["T"], frame["m"], time=12, discount_rate=0.01, freq="W"
        ).to_numpy()
    bg = BgNbdParams(*(float(purchases.params_[k]) for k in ("r", "alpha", "a", "b")))
    gg = GammaGammaParams(*(float(spend.params_[k]) for k in ("p", "q", "v")))
    # lifetimes' months are 4.345 weeks; its discount applies at the end of each month, as ours does.
    ours = clv.predicted_clv(bg, gg, x, t_x, T, np.where(x > 0, m, np.nan), periods=12, period_length=4.345)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    own = clv.predicted_clv(bgnbd.fit(x, t_x, T).params, gamma_gamma.fit(x[x > 0], m[x > 0]).params, x, t_x, T, m,
                            periods=12, period_length=4.345)  # fmt: skip
    np.testing.assert_allclose(own, theirs, rtol=1e-5)


P = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


def test_one_undiscounted_period_is_expected_purchases_times_spend() -> None:
    x, t_x, T = np.array([0.0, 2.0, 7.0]), np.array([0.0, 30.4, 10.0]), np.array([38.9, 38.9, 38.9])
    got = clv.discounted_value(
        P, x, t_x, T, np.array([10.0, 20.0, 30.0]), periods=1, period_length=52.0, discount_rate=0.0
    )
    want = bgnbd.conditional_expected_purchases(P, 52.0, x, t_x, T) * [10.0, 20.0, 30.0]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_margin_scales_the_value() -> None:
    gg = GammaGammaParams(p=6.25, q=3.74, v=15.44)
    args = (P, gg, [1.0], [20.0], [38.0], [25.0])
    base = clv.predicted_clv(*args)
    assert clv.predicted_clv(*args, margin=0.3) == pytest.approx(0.3 * base)


def test_nonsense_horizons_are_refused() -> None:
    with pytest.raises(ValueError, match="periods"):
        clv.discounted_value(P, [1.0], [1.0], [2.0], [1.0], periods=0)


@settings(deadline=None, max_examples=200)
@given(
    st.integers(0, 50),
    st.floats(0.0, 1.0),
    st.floats(0.1, 100.0),
    st.integers(1, 24),
    st.floats(0.0, 0.2),
    st.floats(0.0, 0.2),
)
def test_value_grows_with_the_horizon_and_falls_with_the_discount_rate(
    x: int, u: float, T: float, periods: int, d1: float, d2: float
) -> None:
    t_x = 0.0 if x == 0 else u * T
    low_d, high_d = sorted((d1, d2))

    def value(n: int, d: float) -> float:
        return float(clv.discounted_value(P, float(x), t_x, T, 10.0, periods=n, period_length=4.345, discount_rate=d))

    assert 0.0 <= value(periods, low_d) <= value(periods + 1, low_d) * (1 + 1e-12)
    assert value(periods, high_d) <= value(periods, low_d) * (1 + 1e-12)
