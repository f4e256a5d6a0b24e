"""The portfolio at a glance and the sales pipeline (read key)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from cartera_common.access import Principal, require
from cartera_common.events.changes import STATUSES, Frequency, Status, Tier
from segmenter import repository
from segmenter.scheduler import classify

router = APIRouter(tags=["portfolio"])


class Group(BaseModel):
    key: str | None = Field(description="The value grouped on; null where it is not recorded.")
    customers: int
    buying: int = Field(description="Customers currently buying: new, active or reactivated.")
    pareto: int
    unhappy: int
    revenue: Decimal
    revenue_12m: Decimal
    revenue_12m_share: float = Field(description="This group's share of the portfolio's trailing-12-month revenue.")


class CurvePoint(BaseModel):
    customers: int = Field(description="The top customers by trailing-12-month revenue, counted so far.")
    customer_share: float
    revenue_12m: Decimal = Field(description="Their trailing-12-month revenue together.")
    revenue_share: float


class Concentration(BaseModel):
    customers: int = Field(description="Customers with trailing-12-month revenue above zero: the curve's base.")
    revenue_12m: Decimal
    pareto_customers: int
    pareto_customer_share: float
    pareto_revenue_share: float
    curve: list[CurvePoint] = Field(description="From (0, 0) to (1, 1), customers ranked by revenue, largest first.")


class Breakdown(BaseModel):
    by_industry: list[Group]
    by_region: list[Group]
    by_company_size: list[Group]


class LeaveReason(BaseModel):
    reason: str
    customers: int
    lapsed: int
    lost: int
    unhappy: int


class Leaving(BaseModel):
    lapsed: int
    lost: int
    unhappy_lapsed: int
    unhappy_lost: int
    reasons: list[LeaveReason] = Field(description="Customers per reason, most frequent first.")


class CostlyCustomer(BaseModel):
    customer_id: str
    name: str | None
    status: Status
    revenue: Decimal
    margin: Decimal | None
    cost_to_serve: Decimal
    profit: Decimal


class Unprofitable(BaseModel):
    customers: int
    loss: Decimal = Field(description="What they cost beyond what they bring, together.")
    top: list[CostlyCustomer] = Field(description="The largest losses first.")


class Portfolio(BaseModel):
    customers: int
    revenue: Decimal
    revenue_12m: Decimal
    classified_as_of: datetime | None = Field(description="The last classification run (tiers, RFM, Pareto).")
    by_status: list[Group] = Field(description="Every status, zero included, in lifecycle order.")
    by_tier: list[Group] = Field(description="Every tier from very high to low, then unclassified (key null).")
    by_frequency: list[Group] = Field(description="Every frequency class, then unclassified (key null).")
    concentration: Concentration
    map: Breakdown = Field(description="Where the business already wins, largest trailing revenue first.")
    leaving: Leaving = Field(description="Why lapsed and lost customers left.")
    unprofitable: Unprofitable


_EMPTY = {"customers": 0, "buying": 0, "pareto": 0, "unhappy": 0, "revenue": 0, "revenue_12m": 0}


def _share(part: Decimal | int, whole: Decimal | int) -> float:
    return round(float(part) / float(whole), 6) if whole else 0.0


def _groups(rows: list[dict[str, Any]], total_12m: Decimal, keys: Iterable[str | None] | None = None) -> list[Group]:
    """Rows as groups; with `keys`, exactly those groups in that order, zero where absent."""
    found = {r["key"]: r for r in rows}
    if keys is None:
        ordered = sorted(rows, key=lambda r: (-r["revenue_12m"], -r["customers"], r["key"] is None, r["key"] or ""))
    else:
        ordered = [found.get(k, {**_EMPTY, "key": k}) for k in keys]
    return [Group.model_validate({**r, "revenue_12m_share": _share(r["revenue_12m"], total_12m)}) for r in ordered]


def _concentration(total: Mapping[str, Any], curve: list[dict[str, Any]]) -> Concentration:
    base, revenue = total["buyers_12m"], total["positive_revenue_12m"]
    points = [CurvePoint(customers=0, customer_share=0.0, revenue_12m=Decimal(0), revenue_share=0.0)]
    points += [
        CurvePoint(
            customers=p["customers"],
            customer_share=_share(p["customers"], base),
            revenue_12m=p["revenue_12m"],
            revenue_share=_share(p["revenue_12m"], revenue),
        )
        for p in curve
    ]
    return Concentration(
        customers=base,
        revenue_12m=revenue,
        pareto_customers=total["pareto"],
        pareto_customer_share=_share(total["pareto"], base),
        pareto_revenue_share=_share(total["pareto_revenue_12m"], revenue),
        curve=points,
    )


def _portfolio(data: repository.PortfolioData) -> Portfolio:
    by: dict[str, list[dict[str, Any]]] = {}
    for row in data.breakdown:
        by.setdefault(row["dimension"], []).append(row)
    total = by["total"][0]
    t12 = total["revenue_12m"]
    statuses = {r["key"]: r for r in by.get("status", [])}
    return Portfolio(
        customers=total["customers"],
        revenue=total["revenue"],
        revenue_12m=t12,
        classified_as_of=data.classified_as_of,
        by_status=_groups(by.get("status", []), t12, STATUSES),
        by_tier=_groups(by.get("tier", []), t12, [*get_args(Tier), None]),
        by_frequency=_groups(by.get("frequency", []), t12, [*get_args(Frequency), None]),
        concentration=_concentration(total, data.curve),
        map=Breakdown(
            by_industry=_groups(by.get("industry", []), t12),
            by_region=_groups(by.get("region", []), t12),
            by_company_size=_groups(by.get("company_size", []), t12),
        ),
        leaving=Leaving(
            lapsed=statuses.get("lapsed", _EMPTY)["customers"],
            lost=statuses.get("lost", _EMPTY)["customers"],
            unhappy_lapsed=statuses.get("lapsed", _EMPTY)["unhappy"],
            unhappy_lost=statuses.get("lost", _EMPTY)["unhappy"],
            reasons=[LeaveReason.model_validate(r) for r in data.leaving],
        ),
        unprofitable=Unprofitable(
            customers=total["unprofitable"],
            loss=total["loss"],
            top=[CostlyCustomer.model_validate(r) for r in data.costliest],
        ),
    )


@router.get(
    "/portfolio",
    response_model=Portfolio,
    summary="The portfolio at a glance: segments, revenue concentration, where it wins, why customers left",
    description=(
        "Counts and revenue by status, tier and frequency; the Pareto curve of trailing-12-month revenue "
        "over the customers who brought any; customers and revenue by industry, region and company size; "
        "reasons for leaving across lapsed and lost customers; customers who cost more than they bring. "
        "Read from one consistent snapshot."
    ),
)
async def get_portfolio(
    request: Request,
    principal: Principal = Depends(require("read")),
    points: Annotated[int, Query(ge=1, le=100, description="Points on the Pareto curve, besides (0, 0).")] = 20,
    top: Annotated[int, Query(ge=0, le=100, description="How many of the costliest customers to list.")] = 10,
) -> Portfolio:
    async with repository.reading(request.app.state.runtime.engine, snapshot=True) as conn:
        data = await repository.portfolio(conn, workspace_id=principal.workspace_id, points=points, top=top)
    return _portfolio(data)


class PipelineBucket(BaseModel):
    opportunities: int
    amount: Decimal = Field(description="Sum of amounts; an opportunity without one counts as zero.")
    weighted_amount: Decimal = Field(description="Sum of amount × probability; without a probability, zero.")
    without_probability: int


class PipelineMonth(PipelineBucket):
    month: str = Field(description="Expected close month, YYYY-MM.", examples=["2026-12"])


class Pipeline(BaseModel):
    months: list[PipelineMonth] = Field(description="Open opportunities by expected close month, earliest first.")
    unscheduled: PipelineBucket = Field(description="Open opportunities without an expected close date.")
    total: PipelineBucket


@router.get(
    "/pipeline",
    response_model=Pipeline,
    summary="Open opportunities weighted by probability, by expected close month",
    description="Amounts are summed as recorded, whatever their currency.",
)
async def get_pipeline(request: Request, principal: Principal = Depends(require("read"))) -> Pipeline:
    async with repository.reading(request.app.state.runtime.engine) as conn:
        rows = await repository.pipeline(conn, workspace_id=principal.workspace_id)
    empty = PipelineBucket(opportunities=0, amount=Decimal(0), weighted_amount=Decimal(0), without_probability=0)
    months = [PipelineMonth.model_validate(r) for r in rows if not r["is_total"] and r["month"] is not None]
    unscheduled = [PipelineBucket.model_validate(r) for r in rows if not r["is_total"] and r["month"] is None]
    total = [PipelineBucket.model_validate(r) for r in rows if r["is_total"]]
    return Pipeline(months=months, unscheduled=(unscheduled or [empty])[0], total=(total or [empty])[0])


class PortfolioRunOut(BaseModel):
    workspace_id: str
    as_of: datetime
    customers: int = Field(description="Customers classified.")
    changed: int = Field(description="Customers whose stored classification or trailing revenue was rewritten.")
    moved: int = Field(description="Customers whose tier or Pareto flag changed.")
    published: int = Field(description="`customer_changed` messages staged for campaigns.")
    duration_ms: int


@router.post(
    "/portfolio/recompute",
    response_model=PortfolioRunOut,
    summary="Recompute tiers, RFM and Pareto now (admin)",
    description="The segmenter also does this on its own every `SEGMENTER_PORTFOLIO_INTERVAL_S` (15 minutes).",
)
async def post_recompute(request: Request, principal: Principal = Depends(require("admin"))) -> PortfolioRunOut:
    run = await classify(request.app.state.runtime.engine, principal.workspace_id, now=request.app.state.clock.now())
    return PortfolioRunOut(**dataclasses.asdict(run))
