"""A workspace's scoring rules: quadrant thresholds, win-back economics, lead scoring and channels.

A value object validated at the edge (pydantic, frozen) and passed to the pure rules, like the
segmenter's policy. Every default is documented in the service's README; a workspace that never
set its own rules is scored with `DEFAULT_RULES`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from cartera_common.events.base import RefusesNul

Quadrant = Literal["retain", "develop", "maintain", "abandon"]
QUADRANTS: tuple[Quadrant, ...] = ("retain", "develop", "maintain", "abandon")
Intensity = Literal["full", "light", "none"]
INTENSITIES: tuple[Intensity, ...] = ("full", "light", "none")
Channel = Literal["visit", "call", "personal_email", "email"]
CHANNELS: tuple[Channel, ...] = ("visit", "call", "personal_email", "email")
# What a lead did, as the engagement table keeps it (see `fold.ENGAGEMENT`).
EngagementKind = Literal["visit", "opened", "clicked", "lead", "demo", "trial", "quote"]
ENGAGEMENT_KINDS: tuple[EngagementKind, ...] = ("visit", "opened", "clicked", "lead", "demo", "trial", "quote")
LookalikeAttribute = Literal["industry", "company_size", "region"]
# Profile fields a fit rule can name; any other name is read from the profile's traits (age_band…).
PROFILE_FIELDS = ("industry", "company_size", "region", "country", "segment")

Money = Annotated[float, Field(ge=0, le=1e9)]
Share = Annotated[float, Field(gt=0, lt=1)]
Points = Annotated[float, Field(ge=0, le=100)]


class _Frozen(RefusesNul):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QuadrantRules(_Frozen):
    """Value now (12-month profit) against potential (predicted 12-month value): where "high" starts."""

    value_quantile: Share = Field(
        default=0.5, description="High value: at or above this quantile of the workspace's positive values now."
    )
    potential_quantile: Share = Field(
        default=0.5, description="High potential: at or above this quantile of the workspace's positive CLVs."
    )
    value_threshold: Money | None = Field(default=None, description="A fixed amount instead of the quantile.")
    potential_threshold: Money | None = Field(default=None, description="A fixed amount instead of the quantile.")


class WinbackRules(_Frozen):
    """What a win-back costs and how sure its return must be, per lapsed customer."""

    prior_strength: Annotated[float, Field(ge=0, le=1e6)] = Field(
        default=20,
        description="How many lapsed customers the customer's own P(alive) counts as against the workspace's "
        "observed comeback rate.",
    )
    margin_rate: Annotated[float, Field(gt=0, le=1)] = Field(
        default=1.0,
        description="Share of revenue that is profit, for customers whose orders carry no margin "
        "(1: revenue, as the segmenter's profit reads it).",
    )
    offer_rate: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.10, description="Share of the next order the offer gives away; paid only if the customer returns."
    )
    emails: Annotated[int, Field(ge=0, le=50)] = Field(default=5, description="Emails in a sequence.")
    email_cost: Money = Field(default=0.05, description="Cost of one email.")
    call_cost: Money = Field(default=6.0, description="Cost of the call task a full sequence adds.")
    full_ratio: Annotated[float, Field(ge=1, le=100)] = Field(
        default=2.0, description="A full sequence (with a call) needs an expected return this many times its cost."
    )


class FitRule(_Frozen):
    """Points for a lead whose `field` matches one of `values` (case-insensitive)."""

    field: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="industry, company_size, region, country, segment, or a trait name (age_band, income_band…)."
    )
    values: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(min_length=1, max_length=500)]
    match: Literal["exact", "prefix"] = Field(
        default="exact", description="prefix: the value starts with one of `values` (sector codes: 56 matches 56.10)."
    )
    points: Annotated[float, Field(ge=-100, le=100)]


class Band(_Frozen):
    channel: Channel
    min_score: Points


DEFAULT_LOOKALIKE: dict[LookalikeAttribute, float] = {"industry": 0.5, "company_size": 0.25, "region": 0.25}


class LookalikeRules(_Frozen):
    """How much a lead resembles the workspace's top (Pareto) customers."""

    weights: dict[LookalikeAttribute, Annotated[float, Field(ge=0, le=100)]] = Field(
        default_factory=lambda: dict(DEFAULT_LOOKALIKE)
    )
    industry_prefix: Annotated[int, Field(ge=1, le=16)] = Field(
        default=2, description="Leading characters of the sector code compared (2: NACE division, SIC major group)."
    )
    min_top: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=5, description="Fewer top customers than this: no look-alike points for anyone."
    )
    points: Points = Field(default=20, description="Points of a perfect look-alike.")


DEFAULT_WEIGHTS: dict[EngagementKind, float] = {
    "visit": 3, "opened": 1, "clicked": 3, "lead": 5, "demo": 15, "trial": 15, "quote": 20,
}  # fmt: skip
DEFAULT_BANDS = (
    Band(channel="visit", min_score=70),
    Band(channel="call", min_score=50),
    Band(channel="personal_email", min_score=25),
    Band(channel="email", min_score=0),
)


class LeadRules(_Frozen):
    """Lead score = fit (rules) + engagement (decaying) + look-alike, each capped; bands pick the channel."""

    fit_rules: list[FitRule] = Field(default_factory=list, max_length=200)
    fit_max: Points = Field(default=30, description="Fit points are the matching rules' sum, within [0, fit_max].")
    weights: dict[EngagementKind, Annotated[float, Field(ge=0, le=1000)]] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS), description="Points per event before decay."
    )
    half_life_days: Annotated[float, Field(gt=0, le=3650)] = Field(
        default=30, description="An event counts half as much this many days later."
    )
    engagement_max: Points = Field(default=50)
    engagement_scale: Annotated[float, Field(gt=0, le=1e6)] = Field(
        default=20, description="Decayed points that earn 63 % of `engagement_max` (1 - 1/e)."
    )
    lookalike: LookalikeRules = LookalikeRules()
    bands: list[Band] = Field(default_factory=lambda: list(DEFAULT_BANDS), min_length=1, max_length=20)

    @field_validator("bands")
    @classmethod
    def _highest_first(cls, bands: list[Band]) -> list[Band]:
        """Kept highest band first; the lowest band also catches any score below it."""
        return sorted(bands, key=lambda b: -b.min_score)


class ValueRules(_Frozen):
    """The predicted lifetime value's horizon and discounting."""

    clv_months: int = Field(
        default=12, ge=1, le=120, description="How far ahead CLV counts purchases, in 30-day months."
    )
    monthly_discount_rate: float = Field(
        default=0.01, ge=0, le=0.5, description="Each month's purchases are worth 1/(1 + rate)^k today."
    )


class ScoringRules(_Frozen):
    value: ValueRules = ValueRules()
    quadrants: QuadrantRules = QuadrantRules()
    winback: WinbackRules = WinbackRules()
    leads: LeadRules = LeadRules()


DEFAULT_RULES = ScoringRules()
