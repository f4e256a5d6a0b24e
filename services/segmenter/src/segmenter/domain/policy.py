"""The workspace's policy: where the suspension point lies and how the portfolio is cut.

A value object validated at the edge (pydantic, frozen) and passed to the pure rules. The
defaults suit a typical retailer; `docs/portfolio.md` explains each knob.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Days = Annotated[int, Field(ge=1, le=36_500)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Suspension(_Frozen):
    """When a customer crosses the suspension point and becomes lapsed."""

    mode: Literal["fixed", "adaptive", "probability"] = Field(
        default="adaptive",
        description="fixed: `days` after the last order. adaptive: `k` times the customer's usual gap between "
        "orders, never below `floor_days` (`days` for one-order customers). probability: the scoring model's "
        "P(alive) below `threshold` (`days` until the customer has a score).",
    )
    days: Days = 180
    k: Annotated[float, Field(gt=1, le=100)] = 3.0
    floor_days: Days = 90
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.3


class Rules(_Frozen):
    """The part of the policy an override can change."""

    suspension: Suspension = Suspension()
    lost_after_days: Days = Field(default=365, description="Lapsed this long becomes lost.")
    new_days: Days = Field(default=90, description="How long a first purchase keeps a customer new.")
    reactivated_days: Days = Field(default=90, description="How long a returning customer stays reactivated.")


class Override(_Frozen):
    """Rules for customers whose industry code starts with `industry` and/or whose segment is `segment`."""

    industry: str | None = Field(default=None, min_length=1, max_length=64)
    segment: str | None = Field(default=None, min_length=1, max_length=64)
    suspension: Suspension | None = None
    lost_after_days: Days | None = None
    new_days: Days | None = None
    reactivated_days: Days | None = None

    @model_validator(mode="after")
    def _matches_something(self) -> Override:
        if self.industry is None and self.segment is None:
            raise ValueError("an override needs an industry or a segment to match")
        return self

    def matches(self, industry: str | None, segment: str | None) -> bool:
        if self.industry is not None and not (industry or "").startswith(self.industry):
            return False
        return self.segment is None or self.segment == segment


class FrequencyRules(_Frozen):
    frequent_max_gap_days: Days = 30
    habitual_max_gap_days: Days = 90

    @model_validator(mode="after")
    def _ordered(self) -> FrequencyRules:
        if self.habitual_max_gap_days < self.frequent_max_gap_days:
            raise ValueError("habitual_max_gap_days must be at least frequent_max_gap_days")
        return self


class TierShares(_Frozen):
    """Shares of the buying customers, ranked by trailing-12-month revenue, in each tier; the rest are low."""

    very_high: Annotated[float, Field(gt=0, lt=1)] = 0.05
    high: Annotated[float, Field(gt=0, lt=1)] = 0.15
    medium: Annotated[float, Field(gt=0, lt=1)] = 0.30

    @model_validator(mode="after")
    def _fits(self) -> TierShares:
        if self.very_high + self.high + self.medium >= 1:
            raise ValueError("very_high + high + medium must stay below 1")
        return self


class Policy(Rules):
    overrides: list[Override] = Field(
        default_factory=list, max_length=200, description="The first override that matches a customer wins."
    )
    unhappy_window_days: Days = Field(
        default=90, description="A delivery problem this close before the last order or after it counts."
    )
    frequency: FrequencyRules = FrequencyRules()
    tiers: TierShares = TierShares()
    pareto_share: Annotated[float, Field(gt=0, lt=1)] = 0.8

    def rules_for(self, industry: str | None, segment: str | None) -> Rules:
        for o in self.overrides:
            if o.matches(industry, segment):
                return Rules(
                    suspension=o.suspension or self.suspension,
                    lost_after_days=o.lost_after_days or self.lost_after_days,
                    new_days=o.new_days or self.new_days,
                    reactivated_days=o.reactivated_days or self.reactivated_days,
                )
        return self

    def frequency_of(self, usual_gap: timedelta | None) -> str:
        if usual_gap is None:
            return "occasional"
        if usual_gap <= timedelta(days=self.frequency.frequent_max_gap_days):
            return "frequent"
        if usual_gap <= timedelta(days=self.frequency.habitual_max_gap_days):
            return "habitual"
        return "occasional"


DEFAULT_POLICY = Policy()
