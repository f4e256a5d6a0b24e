"""The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005, Marketing Science 24(2)).

Each customer is summarised by `x` repeat purchases, the time `t_x` of the last one and the age
`T`, both measured from the first purchase in one time unit (days, weeks…); parameters come out in
that unit (`alpha` scales with it). Equation numbers are the paper's. Everything is vectorised
over customers: the terms that depend on `x` alone are computed once per distinct `x`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.integrate import quad
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

Array = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

# Log-parameters are kept within exp(±25): wide enough for any real data set, narrow enough that
# the likelihood never overflows while the optimiser explores.
_LOG_BOUND = 25.0


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class BgNbdFit:
    """A fit with what is needed to judge it later: how well, on how many, and whether it converged."""

    params: BgNbdParams
    log_likelihood: float
    customers: int
    converged: bool
    message: str
    iterations: int


def as_summary(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[Array, Array, Array]:
    """Checks the summaries once, so a bad row fails loudly instead of becoming a NaN likelihood."""
    xs, ts, Ts = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    if not xs.shape == ts.shape == Ts.shape:
        raise ValueError(f"x, t_x and T differ in shape: {xs.shape}, {ts.shape}, {Ts.shape}")
    if not (np.all(xs >= 0) and np.all(xs == np.floor(xs))):
        raise ValueError("x must be whole numbers of repeat purchases, >= 0")
    if not (np.all(ts >= 0) and np.all(ts <= Ts)):
        raise ValueError("recency t_x must lie in [0, T]")
    if np.any((xs == 0) & (ts != 0)):
        raise ValueError("a customer with no repeat purchase has t_x = 0")
    return xs, ts, Ts


def log_likelihood(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Each customer's log-likelihood, eq. (6), summed in log space so that large `x` cannot overflow."""
    xs, ts, Ts = as_summary(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    head = gammaln(r + xs) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    u1 = betaln(a, b + xs) - (r + xs) * np.log(alpha + Ts)
    # The second term exists only for x > 0 (a customer can only drop out right after a purchase).
    safe = np.maximum(xs, 1.0)
    u2 = np.where(xs > 0, betaln(a + 1, b + safe - 1) - (r + xs) * np.log(alpha + ts), -np.inf)
    out: Array = head + np.logaddexp(u1, u2)
    return out


class _Objective:
    """Mean negative log-likelihood of eq. (6) and its analytic gradient in log-parameters.

    The gradient (derived by hand, checked against finite differences in the tests) lets L-BFGS-B
    take one likelihood evaluation per step instead of five, which is what makes a million
    customers fit in seconds.
    """

    def __init__(self, x: Array, t_x: Array, T: Array, weights: Array | None) -> None:
        self.values, self.group = np.unique(x, return_inverse=True)
        self.x, self.t_x, self.T = x, t_x, T
        self.w = weights
        self.total = float(x.size if weights is None else weights.sum())
        self.per_x = self._by_x(None)  # customers (or their weights) per distinct x

    def _by_x(self, v: Array | None) -> Array:
        """Sums `v` (times the weights) per distinct x, so x-only terms are multiplied once per group."""
        if v is None:
            v = self.w
        elif self.w is not None:
            v = v * self.w
        return np.bincount(self.group, weights=v, minlength=self.values.size).astype(np.float64)

    def _sum(self, v: Array) -> float:
        return float(v.sum() if self.w is None else v @ self.w)

    def __call__(self, theta: Array) -> tuple[float, Array]:
        r, alpha, a, b = np.exp(theta)
        xu, xs = self.values, self.x
        pos = xu > 0
        safe = np.where(pos, xu, 1.0)
        head = gammaln(r + xu) - gammaln(r) - betaln(a, b)
        b1 = betaln(a, b + xu)
        b2 = np.where(pos, betaln(a + 1, b + safe - 1), -np.inf)
        log_T, log_t = np.log(alpha + self.T), np.log(alpha + self.t_x)
        u1 = b1[self.group] - (r + xs) * log_T
        u2 = b2[self.group] - (r + xs) * log_t
        ll = self._sum(np.logaddexp(u1, u2)) + head @ self.per_x + r * np.log(alpha) * self.total
        w2 = expit(u2 - u1)  # share of the "dropped out after the last purchase" term
        w1 = 1.0 - w2
        d_r = (digamma(r + xu) - digamma(r)) @ self.per_x + np.log(alpha) * self.total
        d_r -= self._sum(w1 * log_T + w2 * log_t)
        d_alpha = r / alpha * self.total - self._sum((r + xs) * (w1 / (alpha + self.T) + w2 / (alpha + self.t_x)))
        w2_by_x = self._by_x(w2)
        common = (digamma(a + b) - digamma(a + b + xu)) @ self.per_x
        d_a = common + w2_by_x.sum() / a
        d_b = common + (digamma(b + xu) - digamma(b)) @ self.per_x - (w2_by_x / (b + safe - 1)).sum()
        grad = np.array([d_r, d_alpha, d_a, d_b]) * np.exp(theta)
        return -ll / self.total, -grad / self.total


def fit(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None, max_iterations: int = 1000
) -> BgNbdFit:
    """Maximum-likelihood (r, alpha, a, b) by L-BFGS-B on log-parameters, so they stay positive."""
    xs, ts, Ts = as_summary(x, t_x, T)
    if xs.size == 0:
        raise ValueError("no customers to fit")
    ws = None if weights is None else np.asarray(weights, dtype=np.float64)
    objective = _Objective(xs, ts, Ts, ws)
    # Start from r = 1 and a mean purchase rate equal to the observed one; a and b at 1.
    rate = max(float(np.average(xs, weights=ws)), 0.1) / max(float(np.average(Ts, weights=ws)), 1e-9)
    theta0 = np.array([0.0, np.log(1.0 / rate), 0.0, 0.0])
    result = minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 4,
        options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9},
    )
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    return BgNbdFit(
        params=BgNbdParams(r=r, alpha=alpha, a=a, b=b),
        log_likelihood=-float(result.fun) * objective.total,
        customers=int(xs.size),
        converged=bool(result.success),
        message=str(result.message),
        iterations=int(result.nit),
    )


def p_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """P(alive | x, t_x, T), the reciprocal of eq. (10)'s denominator (Hardie's note 021), as a logistic.

    A customer with no repeat purchase is alive with probability 1: in BG/NBD dropping out can only
    happen right after a purchase. That is the model's own answer, not a default.
    """
    xs, ts, Ts = as_summary(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds = np.log(a) - np.log(b + np.maximum(xs, 1.0) - 1) + (r + xs) * np.log1p((Ts - ts) / (alpha + ts))
    out: Array = np.where(xs > 0, expit(-log_odds), 1.0)
    return out


def expected_purchases_if_alive(params: BgNbdParams, t: ArrayLike, x: ArrayLike, T: ArrayLike) -> Array:
    """The numerator of eq. (10): expected purchases in (T, T + t] for a customer known to be alive at T.

    Eq. (10) is this times P(alive); callers that need several horizons compute P(alive) once.
    The paper's 2F1(r+x, b+x; a+b+x-1; z) overflows for large x as z -> 1; Euler's transformation
    2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the product into
    (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose size no longer grows with x. Where scipy's
    2F1 still gives up (large b with t hundreds of times alpha + T), the entry is integrated.
    """
    r, alpha, a, b = params.r, params.alpha, _off_one(params.a), params.b
    shaped = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (t, x, T)))
    ts, xs, Ts = (v.ravel() for v in shaped)
    z = ts / (alpha + Ts + ts)
    log_one_minus_z = -np.log1p(ts / (alpha + Ts))
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite entries are redone below
        scaled = np.exp((a - 1) * log_one_minus_z) * hyp2f1(a + b - 1 - r, a - 1, a + b + xs - 1, z)
        out: Array = (a + b + xs - 1) / (a - 1) * (1.0 - scaled)
    broken = ~np.isfinite(out)
    if np.any(broken):
        # With a and b both huge (a small sample without heterogeneous dropout drives the fit to that
        # boundary) the transformed 2F1 overflows while the paper's own form stays tame.
        with np.errstate(invalid="ignore", over="ignore"):
            plain = np.exp((r + xs) * log_one_minus_z) * hyp2f1(r + xs, b + xs, a + b + xs - 1, z)
            out = np.where(broken, (a + b + xs - 1) / (a - 1) * (1.0 - plain), out)
    for i in np.flatnonzero(~np.isfinite(out)):  # only the rare entries scipy gave up on both ways
        out[i] = _integrated(params, float(ts[i]), float(xs[i]), float(Ts[i]))
    # 1 - scaled cancels to a few ulps below zero for tiny horizons; the quantity cannot be negative.
    return np.maximum(out, 0.0).reshape(shaped[0].shape)


def _integrated(params: BgNbdParams, t: float, x: float, T: float) -> float:
    """Eq. (10)'s numerator as E[(1 - (1 + p s)^-(r+x)) / p] over p ~ Beta(a, b + x), s = t / (alpha + T).

    That is the expectation behind eq. (10): given alive at T, the purchase rate is
    Gamma(r + x, alpha + T) (integrated out in closed form) and the dropout probability
    Beta(a, b + x); a customer with rate lambda expects (1 - exp(-lambda p t)) / p purchases.
    """
    k, beta, s = params.r + x, params.b + x, t / (params.alpha + T)
    a, log_norm = params.a, float(betaln(params.a, params.b + x))

    def purchases(p: float) -> float:
        return k * s if p <= 0.0 else -math.expm1(-k * math.log1p(p * s)) / p

    def left(p: float) -> float:  # times p^(a-1), which quad's algebraic weight takes exactly
        return math.exp((beta - 1) * math.log1p(-p) - log_norm) * purchases(p)

    def middle(p: float) -> float:
        return math.exp((a - 1) * math.log(p) + (beta - 1) * math.log1p(-p) - log_norm) * purchases(p)

    def right(p: float) -> float:  # times (1-p)^(beta-1)
        return math.exp((a - 1) * math.log(p) - log_norm) * purchases(p)

    # The Beta's centre and p ~ 1/s (where the purchases bend) go inside the middle piece.
    marks = [v for v in (a / (a + beta), 1.0 / s if s > 0 else 0.5) if 0.0 < v < 1.0] or [0.5]
    lo, hi = min(marks) / 2, (1.0 + max(marks)) / 2
    options = {"limit": 400, "epsabs": 0.0, "epsrel": 1e-11}
    value = quad(left, 0.0, lo, weight="alg", wvar=(a - 1, 0.0), **options)[0]
    value += quad(middle, lo, hi, points=sorted(marks), **options)[0]
    value += quad(right, hi, 1.0, weight="alg", wvar=(0.0, beta - 1), **options)[0]
    return float(value)


def conditional_expected_purchases(
    params: BgNbdParams, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> Array:
    """E[X(T, T + t) | x, t_x, T], eq. (10): expected repeat purchases in the next `t` time units."""
    alive = p_alive(params, x, t_x, T)
    return alive * expected_purchases_if_alive(params, t, x, T)


def expected_purchases(params: BgNbdParams, t: ArrayLike) -> Array:
    """E[X(t)], eq. (9): repeat purchases of a new customer in (0, t]; sums to the holdout-tracking curve.

    It is eq. (10)'s numerator at x = 0, T = 0 (the same Euler-transformed 2F1).
    """
    ts = np.asarray(t, dtype=np.float64)
    return expected_purchases_if_alive(params, ts, np.zeros_like(ts), np.zeros_like(ts))


def _off_one(a: float) -> float:
    """Moves `a` off 1, where eq. (9)/(10) is 0/0 with a finite limit the formula cannot reach.

    At 1e-7 from 1 the nudge changes predictions by about 1e-7 relative, and the cancellation in
    (1 - ...)/(a - 1) costs about 1e-9 (a + b + x) purchases: both far below what matters.
    """
    return a if abs(a - 1.0) > 1e-7 else 1.0 + (1e-7 if a >= 1.0 else -1e-7)


def sample(params: BgNbdParams, T: ArrayLike, rng: np.random.Generator) -> tuple[Array, Array]:
    """(x, t_x) for customers of ages `T` drawn from the model's own story, for tests and benchmarks.

    Each customer buys at a Gamma(r, alpha) rate and, after each repeat purchase, leaves with a
    Beta(a, b) probability, so the purchases before leaving are geometric. Of the n Poisson
    arrivals in (0, T], the x-th falls at T times a Beta(x, n - x + 1) draw.
    """
    Ts = np.asarray(T, dtype=np.float64)
    rate = rng.gamma(params.r, 1.0 / params.alpha, Ts.shape)
    leave = np.maximum(rng.beta(params.a, params.b, Ts.shape), np.finfo(np.float64).tiny)
    arrivals = rng.poisson(rate * Ts)
    x = np.minimum(arrivals, rng.geometric(leave))
    last = Ts * rng.beta(np.maximum(x, 1), arrivals - x + 1)
    return x.astype(np.float64), np.where(x > 0, last, 0.0)


def median_days_to_next_purchase(params: BgNbdParams, x: ArrayLike, T: ArrayLike) -> Array:
    """The median wait, from the end of the observation, for the next purchase of a customer who is still
    a customer: given (x, T) their purchase rate is Gamma(r + x, α + T), so the wait is Lomax-distributed
    with median (α + T)(2^(1/(r+x)) − 1). The mean would be infinite for r + x ≤ 1; the median never is.
    Whether they are still a customer is P(alive)'s to say, beside it."""
    xs, Ts = np.asarray(x, dtype=np.float64), np.asarray(T, dtype=np.float64)
    shape = params.r + xs
    out: Array = (params.alpha + Ts) * np.expm1(np.log(2.0) / shape)
    return out
