"""Customer-value models at scale: fit and score a million customers, side by side with `lifetimes`.

Customers are drawn from a BG/NBD purchase process and Gamma-Gamma spend with known parameters
(time in days; first purchases spread over two years), so the fit can also be checked for
recovering them. Both implementations fit and score the same arrays in the same process, one
after the other; no database or service is involved.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from bench.report import Figure
from scoring.domain import bgnbd, clv, gamma_gamma
from scoring.domain.bgnbd import BgNbdParams
from scoring.domain.gamma_gamma import GammaGammaParams

Array = npt.NDArray[np.float64]
T_ = TypeVar("T_")

TRUTH = BgNbdParams(r=0.5, alpha=30.0, a=0.8, b=2.5)  # a purchase every 60 days on average while alive
SPEND = GammaGammaParams(p=6.0, q=4.0, v=15.0)  # a mean order of 30
HORIZONS = (30.0, 90.0, 365.0)
MONTHS, MONTH, DISCOUNT = 12, 30.0, 0.01  # lifetimes' freq="D" month is 30 days
LIFETIMES_LIMIT = 2_000_000  # above this lifetimes is fitted on a sample (its autograd Hessian grows with n)


def simulate(customers: int, seed: int = 42) -> tuple[Array, Array, Array, Array]:
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 731, customers).astype(np.float64)
    x, t_x = bgnbd.sample(TRUTH, T, rng)
    return x, t_x, T, gamma_gamma.sample(SPEND, x, rng)


def _timed(what: Callable[[], T_]) -> tuple[T_, float]:
    started = time.perf_counter()
    out = what()
    return out, (time.perf_counter() - started) * 1000


def fit_ours(x: Array, t_x: Array, T: Array, m: Array) -> tuple[bgnbd.BgNbdFit, gamma_gamma.GammaGammaFit]:
    repeat = x > 0
    return bgnbd.fit(x, t_x, T), gamma_gamma.fit(x[repeat], m[repeat])


def score_ours(bg: BgNbdParams, gg: GammaGammaParams, x: Array, t_x: Array, T: Array, m: Array) -> dict[str, Array]:
    alive = bgnbd.p_alive(bg, x, t_x, T)
    out = {f"E[X({h:g})]": alive * bgnbd.expected_purchases_if_alive(bg, h, x, T) for h in HORIZONS}
    out["P(alive)"] = alive
    out["E[M]"] = gamma_gamma.expected_average_value(gg, x, m)
    out["CLV"] = clv.discounted_value(bg, x, t_x, T, out["E[M]"], periods=MONTHS, period_length=MONTH,
                                      discount_rate=DISCOUNT)  # fmt: skip
    return out


def fit_lifetimes(x: Array, t_x: Array, T: Array, m: Array) -> tuple[Any, Any]:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    repeat = x > 0
    return BetaGeoFitter().fit(x, t_x, T), GammaGammaFitter().fit(x[repeat], m[repeat])


def score_lifetimes(bg: Any, gg: Any, frame: Any) -> dict[str, Array]:
    f, r, T, m = frame["x"], frame["t_x"], frame["T"], frame["m"]
    out = {f"E[X({h:g})]": np.asarray(bg.predict(h, f, r, T)) for h in HORIZONS}
    out["P(alive)"] = np.asarray(bg.conditional_probability_alive(f, r, T))
    out["E[M]"] = np.asarray(gg.conditional_expected_average_profit(f, m))
    out["CLV"] = np.asarray(gg.customer_lifetime_value(bg, f, r, T, m, time=MONTHS, discount_rate=DISCOUNT, freq="D"))
    return out


def _worst(ours: dict[str, Array], theirs: dict[str, Array]) -> str:
    diffs = {k: float(np.max(np.abs(ours[k] - theirs[k]) / np.maximum(np.abs(theirs[k]), 1e-12))) for k in ours}
    return ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())


def _ours(x: Array, t_x: Array, T: Array, m: Array) -> tuple[float, float, dict[str, Array]]:
    (bg, gg), fit_ms = _timed(lambda: fit_ours(x, t_x, T, m))
    scores, score_ms = _timed(lambda: score_ours(bg.params, gg.params, x, t_x, T, m))
    got = np.array([bg.params.r, bg.params.alpha, bg.params.a, bg.params.b, gg.params.p, gg.params.q, gg.params.v])
    truth = np.array([TRUTH.r, TRUTH.alpha, TRUTH.a, TRUTH.b, SPEND.p, SPEND.q, SPEND.v])
    print(f"  ours, {x.size:,} customers: fit {fit_ms:,.0f} ms ({bg.iterations} + {gg.iterations} iterations, "
          f"converged {bg.converged and gg.converged}), scored in {score_ms:,.0f} ms; r, alpha, a, b, p, q, v = "
          f"{_list(got)}, worst error against the simulated {_list(truth)}: {np.max(np.abs(got / truth - 1)):.1%}")  # fmt: skip
    return fit_ms, score_ms, scores


def _lifetimes(x: Array, t_x: Array, T: Array, m: Array) -> tuple[float, float, dict[str, Array]]:
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (bg, gg), fit_ms = _timed(lambda: fit_lifetimes(x, t_x, T, m))
        frame = pd.DataFrame({"x": x, "t_x": t_x, "T": T, "m": np.where(x > 0, m, 0.0)})
        scores, score_ms = _timed(lambda: score_lifetimes(bg, gg, frame))
    got = [*bg.params_.to_numpy(), *gg.params_.to_numpy()]
    print(f"  lifetimes, {x.size:,} customers: fit {fit_ms:,.0f} ms, scored in {score_ms:,.0f} ms; "
          f"r, alpha, a, b, p, q, v = {_list(got)}")  # fmt: skip
    return fit_ms, score_ms, scores


def _list(values: Any) -> str:
    return ", ".join(f"{float(v):.4g}" for v in values)


def _size(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def _figures(n: int, fit_ms: float, score_ms: float, base: tuple[float, float] | None, name: str) -> list[Figure]:
    big = n >= 1_000_000
    return [
        Figure(f"BG/NBD + Gamma-Gamma fit, {_size(n)} customers", fit_ms, "ms", base and base[0], name,
               "< 15,000 ms" if big else ""),
        Figure(f"P(alive), E[X] x3, E[M], CLV, {_size(n)} customers", score_ms, "ms", base and base[1], name,
               "< 10,000 ms" if big else ""),
    ]  # fmt: skip


def run_scoring(customers: int) -> list[Figure]:
    """Ours on all customers; lifetimes on the same arrays (or, past LIFETIMES_LIMIT, both on a sample)."""
    print(f"scoring: {customers:,} simulated customers …", flush=True)
    (x, t_x, T, m), took = _timed(lambda: simulate(customers))
    print(f"  simulated in {took:,.0f} ms: {np.mean(x > 0):.0%} bought again, mean x {x.mean():.2f}", flush=True)
    fit_ms, score_ms, ours = _ours(x, t_x, T, m)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lifetimes  # noqa: F401
    except ImportError:
        print("  lifetimes is not installed (pip install -e '.[dev]'): no baseline")
        return _figures(customers, fit_ms, score_ms, None, "")
    if customers <= LIFETIMES_LIMIT:
        base_fit, base_score, theirs = _lifetimes(x, t_x, T, m)
        print(f"  ours vs lifetimes, worst relative difference over all customers: {_worst(ours, theirs)}")
        return _figures(customers, fit_ms, score_ms, (base_fit, base_score), "lifetimes, same data")
    print(
        f"  lifetimes on {customers:,} would need several GB (autograd Hessian): both on a {LIFETIMES_LIMIT:,} sample"
    )
    pick = np.random.default_rng(0).choice(customers, LIFETIMES_LIMIT, replace=False)
    sample = (x[pick], t_x[pick], T[pick], m[pick])
    fit_s, score_s, _ = _ours(*sample)
    base_fit, base_score, _ = _lifetimes(*sample)
    return _figures(customers, fit_ms, score_ms, None, "") + _figures(
        LIFETIMES_LIMIT, fit_s, score_s, (base_fit, base_score), "lifetimes, same sample"
    )
