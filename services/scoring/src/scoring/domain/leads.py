"""Lead score, contact channel and look-alikes, for customers who have not bought yet.

score = fit + engagement + look-alike, each within its own cap (0–100 in all by default):

- **fit**: the sum of the points of the workspace's fit rules the lead matches (industry or sector
  code prefix, company size, region, country, segment, traits such as age_band), within
  [0, fit_max];
- **engagement**: each event's weight halves every `half_life_days`; the decayed sum `raw` earns
  engagement_max · (1 − e^(−raw / engagement_scale)), so more or fresher engagement always scores
  higher and no amount of email opens exceeds the cap;
- **look-alike**: how much the lead resembles the workspace's top customers (see `similarity`),
  times `lookalike.points`.

The channel is the first band (highest first) whose minimum the score reaches; the lowest band
catches the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.domain.rules import Channel, FitRule, LeadRules, LookalikeRules

Array = npt.NDArray[np.float64]
Profile = Mapping[str, str | None]  # field or trait name → its value as text


@dataclass(frozen=True)
class TopProfile:
    """Per attribute and value: the share of top customers with it, relative to the most common value."""

    customers: int = 0
    shares: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"customers": self.customers, "shares": {a: dict(v) for a, v in self.shares.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> TopProfile:
        if not data:
            return cls()
        return cls(int(data.get("customers", 0)), {a: dict(v) for a, v in (data.get("shares") or {}).items()})


@dataclass(frozen=True, eq=False)
class LeadScores:
    score: Array
    fit: Array
    engagement: Array
    similarity: Array  # 0..1, the look-alike part before its points
    channel: list[Channel]


def _norm(value: object) -> str | None:
    text = str(value).strip().casefold() if value is not None else ""
    return text or None


def _matches(rule: FitRule, value: str | None) -> bool:
    if value is None:
        return False
    wanted = (v.strip().casefold() for v in rule.values)
    return any(value.startswith(w) for w in wanted) if rule.match == "prefix" else value in wanted


def fit(profile: Profile, rules: LeadRules) -> float:
    """Points of every rule the profile matches (each rule once), within [0, fit_max]."""
    total = sum(r.points for r in rules.fit_rules if _matches(r, _norm(profile.get(r.field))))
    return float(min(max(total, 0.0), rules.fit_max))


def decay(age_days: npt.ArrayLike, half_life_days: float) -> Array:
    """2^(−age / half-life); an event dated in the future counts as today's."""
    out: Array = np.exp2(-np.maximum(np.asarray(age_days, dtype=np.float64), 0.0) / half_life_days)
    return out


def engagement_raw(
    customer: npt.ArrayLike,
    kind: Sequence[str],
    age_days: npt.ArrayLike,
    count: npt.ArrayLike,
    n: int,
    rules: LeadRules,
) -> Array:
    """Decayed, weighted event points per customer (`customer` indexes 0..n-1), one pass over the rows."""
    idx = np.asarray(customer, dtype=np.int64)
    weights = {str(k): w for k, w in rules.weights.items()}
    weight = np.array([weights.get(k, 0.0) for k in kind], dtype=np.float64)
    points = weight * np.asarray(count, dtype=np.float64) * decay(age_days, rules.half_life_days)
    out: Array = np.bincount(idx, weights=points, minlength=n).astype(np.float64)
    return out


def engagement_points(raw: npt.ArrayLike, rules: LeadRules) -> Array:
    out: Array = rules.engagement_max * -np.expm1(
        -np.maximum(np.asarray(raw, dtype=np.float64), 0.0) / rules.engagement_scale
    )
    return out


def _attribute(profile: Profile, attribute: str, rules: LookalikeRules) -> str | None:
    value = _norm(profile.get(attribute))
    if value is not None and attribute == "industry":
        return value[: rules.industry_prefix]
    return value


def top_profile(top: Sequence[Profile], rules: LookalikeRules) -> TopProfile:
    """What the top customers look like: for each attribute, each value's share relative to the commonest."""
    shares: dict[str, dict[str, float]] = {}
    for attribute in rules.weights:
        counts = Counter(v for p in top if (v := _attribute(p, attribute, rules)) is not None)
        most = max(counts.values(), default=0)
        shares[attribute] = {v: c / most for v, c in counts.items()}
    return TopProfile(customers=len(top), shares=shares)


def similarity(profile: Profile, top: TopProfile, rules: LookalikeRules) -> float:
    """Σ_a w_a · share_a(the lead's value) / Σ_a w_a over industry, size and region, in [0, 1].

    share_a(v) is how many top customers have value v for attribute a, relative to the value most
    top customers have (which scores 1); an unknown or unseen value scores 0. Fewer than `min_top`
    top customers: 0 for everyone, since a handful of customers says little about where one wins.
    """
    total = sum(rules.weights.values())
    if top.customers < rules.min_top or total <= 0:
        return 0.0
    got = 0.0
    for attribute, weight in rules.weights.items():
        value = _attribute(profile, attribute, rules)
        if value is not None:
            got += weight * top.shares.get(attribute, {}).get(value, 0.0)
    return got / total


def channel(score: float, rules: LeadRules) -> Channel:
    for band in rules.bands:  # highest first
        if score >= band.min_score:
            return band.channel
    return rules.bands[-1].channel


def score_leads(profiles: Sequence[Profile], raw: npt.ArrayLike, top: TopProfile, rules: LeadRules) -> LeadScores:
    """Every lead's score and its parts; `raw` is `engagement_raw` for the same leads."""
    fits = np.array([fit(p, rules) for p in profiles], dtype=np.float64)
    similar = np.array([similarity(p, top, rules.lookalike) for p in profiles], dtype=np.float64)
    engaged = engagement_points(raw, rules)
    total = fits + engaged + similar * rules.lookalike.points
    return LeadScores(
        score=total,
        fit=fits,
        engagement=engaged,
        similarity=similar,
        channel=[channel(float(s), rules) for s in total],
    )
