"""Gamma-Gamma spend: the published CDNOW fit, the `lifetimes` package on the same data, the fallback."""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import approx_fprime

from scoring.domain import gamma_gamma
from scoring.domain.gamma_gamma import GammaGammaParams

Array = np.ndarray


def _datasets() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.origin is not None, "the dev extra installs lifetimes"
    return Path(spec.origin).parent / "datasets"


@pytest.fixture(scope="module")
def cdnow() -> tuple[Array, Array]:
    """The 946 CDNOW customers with repeat purchases: x and zbar, their mean repeat spend."""
    table = np.loadtxt(_datasets() / "cdnow_customers_summary_with_transactions.csv", delimiter=",", skiprows=1)
    repeat = table[:, 1] > 0
    return table[repeat, 1], table[repeat, 4]


@pytest.fixture(scope="module")
def fitted(cdnow: tuple[Array, Array]) -> gamma_gamma.GammaGammaFit:
    return gamma_gamma.fit(*cdnow)


@pytest.fixture(scope="module")
def reference(cdnow: tuple[Array, Array]) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import GammaGammaFitter

        return GammaGammaFitter().fit(*cdnow)


def _as_array(p: GammaGammaParams) -> Array:
    return np.array([p.p, p.q, p.v])


def test_cdnow_fit_reproduces_the_published_parameters(fitted: gamma_gamma.GammaGammaFit) -> None:
    # Fader & Hardie, "The Gamma-Gamma Model of Monetary Value" (2013): p = 6.25, q = 3.74, gamma = 15.44,
    # given to two decimals (the optimum, which lifetimes finds too, has gamma = 15.4477: within 0.01).
    assert np.all(np.abs(_as_array(fitted.params) - [6.25, 3.74, 15.44]) <= [0.005, 0.005, 0.01])
    assert fitted.converged and fitted.customers == 946


def test_cdnow_fit_agrees_with_lifetimes(
    cdnow: tuple[Array, Array], fitted: gamma_gamma.GammaGammaFit, reference: object
) -> None:
    theirs = np.asarray(reference.params_[["p", "q", "v"]], dtype=np.float64)  # type: ignore[attr-defined]
    np.testing.assert_allclose(_as_array(fitted.params), theirs, rtol=1e-5)
    # lifetimes minimises the mean negative log-likelihood: the same function, per customer.
    assert fitted.log_likelihood == pytest.approx(-reference._negative_log_likelihood_ * 946, abs=1e-5)  # type: ignore[attr-defined]
    assert fitted.log_likelihood == pytest.approx(gamma_gamma.log_likelihood(fitted.params, *cdnow).sum(), abs=1e-6)


def test_cdnow_expected_spend_agrees_with_lifetimes(
    cdnow: tuple[Array, Array], fitted: gamma_gamma.GammaGammaFit, reference: object
) -> None:
    x, m = cdnow
    theirs = GammaGammaParams(*(float(reference.params_[k]) for k in ("p", "q", "v")))  # type: ignore[attr-defined]
    expected_ref = np.asarray(reference.conditional_expected_average_profit(x, m))  # type: ignore[attr-defined]
    np.testing.assert_allclose(gamma_gamma.expected_average_value(theirs, x, m), expected_ref, rtol=1e-12)
    np.testing.assert_allclose(gamma_gamma.expected_average_value(fitted.params, x, m), expected_ref, rtol=1e-6)


@pytest.mark.parametrize("point", [(6.25, 3.74, 15.44), (1.0, 2.0, 30.0), (0.3, 12.0, 2.0)])
def test_analytic_gradient_matches_finite_differences(cdnow: tuple[Array, Array], point: tuple[float, ...]) -> None:
    objective = gamma_gamma._Objective(*cdnow)
    theta = np.log(point)
    _, grad = objective(theta)
    numeric = approx_fprime(theta, lambda th: objective(th)[0], 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_customers_without_repeat_purchases_get_the_population_mean() -> None:
    p = GammaGammaParams(p=6.25, q=3.74, v=15.44)
    mean = 6.25 * 15.44 / 2.74
    assert gamma_gamma.population_mean(p) == pytest.approx(mean)
    got = gamma_gamma.expected_average_value(p, [0.0, 0.0, 1.0], [np.nan, 0.0, 50.0])
    assert got[:2].tolist() == pytest.approx([mean, mean])
    assert mean < got[2] < 50.0


def test_a_population_without_a_finite_mean_says_so() -> None:
    p = GammaGammaParams(p=2.0, q=0.8, v=10.0)
    assert gamma_gamma.population_mean(p) == math.inf
    got = gamma_gamma.expected_average_value(p, [0.0, 3.0], [np.nan, 20.0])
    assert got[0] == math.inf and np.isfinite(got[1])  # the customer's own purchases still say something


def test_fit_recovers_the_parameters_it_was_simulated_from() -> None:
    truth = GammaGammaParams(p=6.0, q=4.0, v=15.0)
    rng = np.random.default_rng(11)
    x = rng.integers(1, 20, 200_000).astype(float)
    m = gamma_gamma.sample(truth, x, rng)
    got = gamma_gamma.fit(x, m)
    assert got.converged
    np.testing.assert_allclose(_as_array(got.params), _as_array(truth), rtol=0.05)


def test_customers_who_never_bought_again_cannot_be_fitted_on() -> None:
    with pytest.raises(ValueError, match="x >= 1"):
        gamma_gamma.fit([0.0, 2.0], [np.nan, 10.0])
    with pytest.raises(ValueError, match="positive"):
        gamma_gamma.fit([1.0, 2.0], [0.0, 10.0])


@settings(deadline=None, max_examples=300)
@given(
    st.builds(GammaGammaParams, p=st.floats(0.1, 50.0), q=st.floats(1.01, 50.0), v=st.floats(0.1, 1000.0)),
    st.integers(1, 500),
    st.floats(0.01, 10_000.0),
)
def test_expected_spend_lies_between_the_customers_mean_and_the_populations(
    p: GammaGammaParams, x: int, m: float
) -> None:
    got = float(gamma_gamma.expected_average_value(p, float(x), m))
    low, high = sorted((m, gamma_gamma.population_mean(p)))
    assert low * (1 - 1e-12) <= got <= high * (1 + 1e-12)
