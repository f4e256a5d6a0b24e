"""BG/NBD: the published CDNOW fit, the `lifetimes` package on the same data, and the model's properties."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import approx_fprime
from scipy.special import hyp2f1

from scoring.domain import bgnbd
from scoring.domain.bgnbd import BgNbdParams

Array = np.ndarray


def _datasets() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.origin is not None, "the dev extra installs lifetimes"
    return Path(spec.origin).parent / "datasets"


@pytest.fixture(scope="module")
def cdnow() -> tuple[Array, Array, Array]:
    """Fader, Hardie & Lee's 2,357 CDNOW customers: x, t_x and T in weeks, as the paper used them."""
    table = np.loadtxt(_datasets() / "cdnow_customers_summary.csv", delimiter=",", skiprows=1)
    return table[:, 1], table[:, 2], table[:, 3]


@pytest.fixture(scope="module")
def fitted(cdnow: tuple[Array, Array, Array]) -> bgnbd.BgNbdFit:
    return bgnbd.fit(*cdnow)


@pytest.fixture(scope="module")
def reference(cdnow: tuple[Array, Array, Array]) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter

        return BetaGeoFitter().fit(*cdnow)


def _as_array(p: BgNbdParams) -> Array:
    return np.array([p.r, p.alpha, p.a, p.b])


def test_cdnow_fit_reproduces_the_published_parameters_and_likelihood(fitted: bgnbd.BgNbdFit) -> None:
    # Fader, Hardie & Lee (2005), section 4: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
    np.testing.assert_allclose(_as_array(fitted.params), [0.243, 4.414, 0.793, 2.426], rtol=2e-3)
    assert fitted.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert fitted.converged and fitted.customers == 2357 and fitted.iterations > 0


def test_cdnow_fit_agrees_with_lifetimes(fitted: bgnbd.BgNbdFit, reference: object) -> None:
    theirs = np.asarray(reference.params_[["r", "alpha", "a", "b"]], dtype=np.float64)  # type: ignore[attr-defined]
    # Both optimisers stop on their own tolerances; the optima agree to about 5e-7.
    np.testing.assert_allclose(_as_array(fitted.params), theirs, rtol=1e-5)


def test_cdnow_predictions_agree_with_lifetimes_for_every_customer(
    cdnow: tuple[Array, Array, Array], fitted: bgnbd.BgNbdFit, reference: object
) -> None:
    x, t_x, T = cdnow
    theirs = BgNbdParams(*(float(reference.params_[k]) for k in ("r", "alpha", "a", "b")))  # type: ignore[attr-defined]
    alive_ref = reference.conditional_probability_alive(x, t_x, T)  # type: ignore[attr-defined]
    # The same formulas: with the same parameters, agreement to rounding.
    np.testing.assert_allclose(bgnbd.p_alive(theirs, x, t_x, T), alive_ref, rtol=1e-12)
    for weeks in (1.0, 10.0, 39.0, 52.0, 520.0):
        expected_ref = reference.conditional_expected_number_of_purchases_up_to_time(weeks, x, t_x, T)  # type: ignore[attr-defined]
        np.testing.assert_allclose(
            bgnbd.conditional_expected_purchases(theirs, weeks, x, t_x, T), expected_ref, rtol=1e-10
        )
        # And each fit's own parameters: the small difference between the optima, no more.
        ours = bgnbd.conditional_expected_purchases(fitted.params, weeks, x, t_x, T)
        np.testing.assert_allclose(ours, expected_ref, rtol=1e-5)
        unconditional = reference.expected_number_of_purchases_up_to_time(weeks)  # type: ignore[attr-defined]
        assert float(bgnbd.expected_purchases(theirs, weeks)) == pytest.approx(unconditional, rel=1e-10)
    np.testing.assert_allclose(bgnbd.p_alive(fitted.params, x, t_x, T), alive_ref, rtol=1e-5)


def test_log_likelihood_is_the_same_at_both_optima(cdnow: tuple[Array, Array, Array], fitted: bgnbd.BgNbdFit) -> None:
    total = bgnbd.log_likelihood(fitted.params, *cdnow).sum()
    assert total == pytest.approx(fitted.log_likelihood, abs=1e-6)
    published = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    assert bgnbd.log_likelihood(published, *cdnow).sum() <= total  # we found at least as good an optimum


@pytest.mark.parametrize(
    "point", [(0.24, 4.4, 0.79, 2.4), (0.5, 3.0, 1.3, 2.0), (3.0, 0.5, 0.1, 40.0), (0.05, 90.0, 8.0, 0.3)]
)
def test_analytic_gradient_matches_finite_differences(
    cdnow: tuple[Array, Array, Array], point: tuple[float, ...]
) -> None:
    objective = bgnbd._Objective(*cdnow, None)
    theta = np.log(point)
    _, grad = objective(theta)
    numeric = approx_fprime(theta, lambda th: objective(th)[0], 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_weights_count_customers_with_the_same_history(cdnow: tuple[Array, Array, Array]) -> None:
    x, t_x, T = cdnow
    rows, counts = np.unique(np.stack([x, t_x, T]), axis=1, return_counts=True)
    compressed = bgnbd.fit(rows[0], rows[1], rows[2], weights=counts)
    np.testing.assert_allclose(_as_array(compressed.params), [0.2426, 4.4135, 0.7929, 2.4258], rtol=1e-4)
    assert compressed.log_likelihood == pytest.approx(-9582.43, abs=0.01)


def test_fit_recovers_the_parameters_it_was_simulated_from() -> None:
    truth = BgNbdParams(r=0.5, alpha=30.0, a=0.8, b=2.5)
    rng = np.random.default_rng(7)
    T = rng.integers(1, 731, 200_000).astype(float)
    x, t_x = bgnbd.sample(truth, T, rng)
    got = bgnbd.fit(x, t_x, T)
    assert got.converged
    np.testing.assert_allclose(_as_array(got.params), _as_array(truth), rtol=0.05)


def test_a_customer_without_repeat_purchases_is_alive_with_certainty() -> None:
    # BG/NBD lets customers leave only right after a purchase, so x = 0 means never left.
    p = BgNbdParams(r=0.24, alpha=4.4, a=0.79, b=2.4)
    assert bgnbd.p_alive(p, [0.0, 0.0], [0.0, 0.0], [1.0, 500.0]).tolist() == [1.0, 1.0]
    assert float(bgnbd.p_alive(p, 1.0, 1.0, 500.0)) < 0.1


def test_heavy_buyers_do_not_overflow() -> None:
    p = BgNbdParams(r=0.24, alpha=4.4, a=0.79, b=2.4)
    x, t_x, T = np.array([500.0, 5_000.0]), np.array([20.0, 30.0]), np.array([39.0, 39.0])
    alive = bgnbd.p_alive(p, x, t_x, T)
    expected = bgnbd.conditional_expected_purchases(p, 52.0, x, t_x, T)
    assert np.all(np.isfinite(alive)) and np.all(np.isfinite(expected))
    assert np.all(bgnbd.log_likelihood(p, x, t_x, T) > -np.inf)
    assert np.all(expected <= alive * (p.r + x) / (p.alpha + T) * 52.0)


def test_expected_purchases_where_scipy_hyp2f1_gives_up() -> None:
    # Large b and a horizon ~650 times alpha + T: scipy 1.17's hyp2f1 returns NaN here, so the entry
    # is integrated. Reference: mpmath, 150 digits, c/(a-1) (1 - 2F1(a-1, r+x; c; -t/(alpha+T))).
    p = BgNbdParams(r=0.015, alpha=0.02, a=11.0, b=217.0)
    assert float(bgnbd.expected_purchases_if_alive(p, 1e4, 13.0, 15.5)) == pytest.approx(
        23.999999999998834527, rel=1e-10
    )


def test_numerical_integration_agrees_with_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        r, alpha, a, b = np.exp(rng.uniform(np.log([0.05, 0.1, 0.05, 0.05]), np.log([20, 200, 20, 200])))
        p = BgNbdParams(r=r, alpha=alpha, a=a, b=b)
        x, T, t = float(rng.integers(0, 50)), float(rng.uniform(0, 500)), float(rng.uniform(0.1, 1000))
        closed = float(bgnbd.expected_purchases_if_alive(p, t, x, T))
        assert bgnbd._integrated(p, t, x, T) == pytest.approx(closed, rel=1e-8)


def test_inconsistent_summaries_are_refused() -> None:
    p = BgNbdParams(r=0.24, alpha=4.4, a=0.79, b=2.4)
    with pytest.raises(ValueError, match="recency"):
        bgnbd.p_alive(p, [1.0], [5.0], [4.0])
    with pytest.raises(ValueError, match="whole"):
        bgnbd.fit([1.5], [1.0], [4.0])
    with pytest.raises(ValueError, match="t_x = 0"):
        bgnbd.log_likelihood(p, [0.0], [1.0], [4.0])


params = st.builds(
    BgNbdParams,
    r=st.floats(0.05, 20.0),
    alpha=st.floats(0.1, 500.0),
    a=st.floats(0.05, 20.0),
    b=st.floats(0.05, 200.0),
)
histories = st.tuples(st.integers(0, 200), st.floats(0.0, 1.0), st.floats(0.0, 1000.0)).map(
    lambda h: (float(h[0]), 0.0 if h[0] == 0 else h[1] * h[2], h[2])
)


@settings(deadline=None, max_examples=300)
@given(params, histories)
def test_p_alive_is_a_probability(p: BgNbdParams, history: tuple[float, float, float]) -> None:
    alive = float(bgnbd.p_alive(p, *history))
    assert 0.0 <= alive <= 1.0


@settings(deadline=None, max_examples=300)
@given(params, st.integers(1, 200), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.01, 1000.0))
def test_p_alive_grows_with_recency(p: BgNbdParams, x: int, u: float, v: float, T: float) -> None:
    earlier, later = sorted((u * T, v * T))
    alive = bgnbd.p_alive(p, [float(x)] * 2, [earlier, later], [T, T])
    assert alive[0] <= alive[1]


@settings(deadline=None, max_examples=300)
@given(params, histories, st.floats(0.0, 2000.0), st.floats(0.0, 2000.0))
def test_expected_purchases_are_non_negative_and_grow_with_the_horizon(
    p: BgNbdParams, history: tuple[float, float, float], s: float, t: float
) -> None:
    x, t_x, T = history
    short, long = sorted((s, t))
    got = bgnbd.conditional_expected_purchases(p, np.array([0.0, short, long]), x, t_x, T)
    assert got[0] == 0.0
    assert 0.0 <= got[1] <= got[2] * (1 + 1e-9) + 1e-12
    # Never more than a customer who could not leave would buy: P(alive) E[lambda] t.
    ceiling = float(bgnbd.p_alive(p, x, t_x, T)) * (p.r + x) / (p.alpha + T) * long
    assert got[2] <= ceiling * (1 + 1e-9) + 1e-12


def test_the_papers_form_takes_over_where_the_transformed_one_overflows() -> None:
    """A small sample with no heterogeneity in dropout drives a and b to huge values; predictions stay
    finite, agree with the transformed form where both work, and never exceed a customer who cannot leave."""
    x, T = np.array([0.0, 1.0, 5.0, 20.0]), np.array([300.0, 200, 160, 300])
    huge = bgnbd.BgNbdParams(r=1.834, alpha=97.4, a=3.08e6, b=7.47e6)
    e = bgnbd.expected_purchases_if_alive(huge, 30.0, x, T)
    assert np.all(np.isfinite(e)) and np.all(e > 0)
    assert np.all(e <= (huge.r + x) / (huge.alpha + T) * 30.0 + 1e-9)  # E[rate] x t bounds a customer who stays
    near = bgnbd.BgNbdParams(r=1.834, alpha=97.4, a=3.08e3, b=7.47e3)  # both forms work here: the same answer
    reference = bgnbd.expected_purchases_if_alive(near, 30.0, x, T)
    z = 30.0 / (near.alpha + T + 30.0)
    plain = np.exp((near.r + x) * -np.log1p(30.0 / (near.alpha + T))) * hyp2f1(
        near.r + x, near.b + x, near.a + near.b + x - 1, z
    )
    assert np.allclose(reference, (near.a + near.b + x - 1) / (near.a - 1) * (1 - plain), rtol=1e-8)


def test_the_median_wait_for_the_next_purchase_matches_a_simulation_of_the_posterior() -> None:
    import numpy as np

    from scoring.domain.bgnbd import BgNbdParams, median_days_to_next_purchase

    params = BgNbdParams(r=0.243, alpha=30.9, a=0.793, b=2.426)
    rng = np.random.default_rng(3)
    for x, T in ((0.0, 100.0), (4.0, 200.0), (20.0, 365.0)):
        rates = rng.gamma(params.r + x, 1.0 / (params.alpha + T), size=400_000)
        waits = rng.exponential(1.0 / rates)
        formula = float(median_days_to_next_purchase(params, x, T))
        assert abs(np.median(waits) - formula) / formula < 0.02
    waits = median_days_to_next_purchase(params, np.array([1.0, 2.0, 8.0]), np.array([200.0, 200.0, 200.0]))
    assert waits[0] > waits[1] > waits[2] > 0  # more purchases in the same time: sooner
