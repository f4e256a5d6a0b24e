"""The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV: Using
Iso-Value Curves for Customer Base Analysis", JMR 42(4); equations as numbered in Fader & Hardie's
note 025, "The Gamma-Gamma Model of Monetary Value", 2013).

A customer's purchases are Gamma(p, nu) amounts; nu varies across customers as Gamma(q, v). It is
fitted on customers with `x > 0` repeat purchases and `m`, the mean amount of those purchases, and
assumes spend does not depend on how often a customer buys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

Array = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

_LOG_BOUND = 25.0


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    v: float


@dataclass(frozen=True)
class GammaGammaFit:
    params: GammaGammaParams
    log_likelihood: float
    customers: int
    converged: bool
    message: str
    iterations: int


def as_spend(x: ArrayLike, m: ArrayLike) -> tuple[Array, Array]:
    """Only customers who bought again carry information on spend; anything else is a caller's bug."""
    xs, ms = np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64)
    if xs.shape != ms.shape:
        raise ValueError(f"x and m differ in shape: {xs.shape}, {ms.shape}")
    if not (np.all(xs >= 1) and np.all(xs == np.floor(xs))):
        raise ValueError("the spend model is fitted on customers with x >= 1 repeat purchases")
    if not np.all(ms > 0):
        raise ValueError("mean spend m must be positive (and not NaN)")
    return xs, ms


def log_likelihood(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> Array:
    """Each customer's log density of the mean spend `m` given `x` purchases (note 025, eq. 1a)."""
    xs, ms = as_spend(x, m)
    p, q, v = params.p, params.q, params.v
    px = p * xs
    out: Array = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(ms)
        + px * np.log(xs)
        - (px + q) * np.log(v + ms * xs)
    )
    return out


class _Objective:
    """Mean negative log-likelihood and its analytic gradient in log-parameters.

    Only `log(v + m x)` has to be recomputed per customer at each step; the `x`-only terms are
    computed once per distinct `x`, and the sums of `log m` and `x log m` once per fit.
    """

    def __init__(self, x: Array, m: Array) -> None:
        self.values, group = np.unique(x, return_inverse=True)
        self.per_x = np.bincount(group, minlength=self.values.size).astype(np.float64)
        self.x, self.mx = x, m * x
        log_m = np.log(m)
        self.sum_log_m, self.sum_x_log_m = float(log_m.sum()), float(x @ log_m)
        self.sum_x = float(x.sum())
        self.total = float(x.size)

    def __call__(self, theta: Array) -> tuple[float, Array]:
        p, q, v = np.exp(theta)
        xu, n = self.values, self.per_x
        pxu = p * xu
        log_vmx = np.log(v + self.mx)
        sum_log_vmx, sum_x_log_vmx = float(log_vmx.sum()), float(self.x @ log_vmx)
        ll = (gammaln(pxu + q) - gammaln(pxu) + pxu * np.log(xu)) @ n
        ll += self.total * (q * np.log(v) - gammaln(q)) + p * self.sum_x_log_m - self.sum_log_m
        ll -= p * sum_x_log_vmx + q * sum_log_vmx
        psi = digamma(pxu + q)
        d_p = (xu * (psi - digamma(pxu) + np.log(xu))) @ n + self.sum_x_log_m - sum_x_log_vmx
        d_q = (psi - digamma(q)) @ n + self.total * np.log(v) - sum_log_vmx
        inv = 1.0 / (v + self.mx)
        d_v = self.total * q / v - p * float(self.x @ inv) - q * float(inv.sum())
        grad = np.array([d_p, d_q, d_v]) * np.exp(theta)
        return -ll / self.total, -grad / self.total


def fit(x: ArrayLike, m: ArrayLike, *, max_iterations: int = 1000) -> GammaGammaFit:
    """Maximum-likelihood (p, q, v), starting where the population mean spend equals the observed one."""
    xs, ms = as_spend(x, m)
    if xs.size == 0:
        raise ValueError("no customers with repeat purchases to fit")
    objective = _Objective(xs, ms)
    theta0 = np.log([1.0, 2.0, float(np.average(ms, weights=xs))])  # p v / (q - 1) = mean spend
    result = minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 3,
        options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9},
    )
    p, q, v = (float(k) for k in np.exp(result.x))
    return GammaGammaFit(
        params=GammaGammaParams(p=p, q=q, v=v),
        log_likelihood=-float(result.fun) * objective.total,
        customers=int(xs.size),
        converged=bool(result.success),
        message=str(result.message),
        iterations=int(result.nit),
    )


def population_mean(params: GammaGammaParams) -> float:
    """E[M] = p v / (q - 1): the fallback spend for customers with no repeat purchase to learn from.

    With q <= 1 the fitted population has no finite mean; this returns infinity rather than a
    number that looks plausible.
    """
    if params.q <= 1:
        return math.inf
    return params.p * params.v / (params.q - 1)


def expected_average_value(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> Array:
    """E[M | x, m] (note 025, eq. 5): a credibility-weighted mix of the population mean and `m`.

    The weight on the customer's own mean grows with `x`. Where `x = 0` the result is the
    population mean (the formula's own limit, and `m` is ignored, so NaN is fine there): callers
    mark those rows as the fallback.
    """
    xs, ms = np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64)
    p, q, v = params.p, params.q, params.v
    # p (v + x m) / (p x + q - 1) is the same mix written so that it stays finite when q <= 1.
    with np.errstate(divide="ignore", invalid="ignore"):  # x = 0 rows are replaced below
        mixed = p * (v + xs * np.where(xs > 0, ms, 0.0)) / (p * xs + q - 1)
    out: Array = np.where(xs > 0, mixed, population_mean(params))
    return out


def sample(params: GammaGammaParams, x: ArrayLike, rng: np.random.Generator) -> Array:
    """Mean spend `m` of `x` purchases from the model's own story (NaN where x = 0), for tests and benchmarks.

    A customer's purchases are Gamma(p, nu) with nu ~ Gamma(q, v), so the mean of x of them is
    Gamma(p x, nu x).
    """
    xs = np.asarray(x, dtype=np.float64)
    nu = rng.gamma(params.q, 1.0 / params.v, xs.shape)
    safe = np.maximum(xs, 1.0)
    out: Array = np.where(xs > 0, rng.gamma(params.p * safe, 1.0 / (nu * safe)), np.nan)
    return out
