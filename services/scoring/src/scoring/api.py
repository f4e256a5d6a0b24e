"""Scores and models over HTTP: read with a read key; refitting needs an admin key."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select

from cartera_common.access import Principal, require
from scoring.domain.rules import Channel, Intensity, Quadrant
from scoring.refit import refit
from scoring.tables import model_fit, score

router = APIRouter()


class Winback(BaseModel):
    """Do we want this lapsed customer back? The decision and the numbers behind it."""

    worth: bool
    intensity: Intensity = Field(description="full: a sequence with a call; light: email only; none: no win-back.")
    expected_return: float | None = Field(description="P(reactivation) x predicted value.")
    cost: float | None = Field(description="Channel cost of the sequence plus the expected cost of the offer.")
    p_reactivation: float | None = Field(
        description="The workspace's comeback rate, smoothed towards this customer's P(alive)."
    )
    predicted_value: float | None = Field(description="12-month discounted value if won back, at the margin rate.")


class Lead(BaseModel):
    """For a customer who has not bought yet: the lead score, its parts and the contact channel."""

    score: float = Field(description="fit + engagement + look-alike points, 0-100 with the default rules.")
    fit: float
    engagement: float
    lookalike: float = Field(description="Similarity (0-1) to the workspace's top customers.")
    channel: Channel


class Score(BaseModel):
    customer_id: str
    p_alive: float | None = Field(description="Probability the customer is still a customer (BG/NBD).")
    expected_30: float | None = Field(description="Expected purchase days in the next 30 days.")
    expected_90: float | None
    expected_365: float | None
    expected_order_value: float | None = Field(description="Gamma-Gamma expected spend per purchase.")
    clv: float | None = Field(
        description="Discounted predicted value over the workspace's horizon (rules.value: 12 months by default)."
    )
    next_purchase_at: datetime | None = Field(
        default=None,
        description="The median date of the next purchase if the customer is still a customer; read it with p_alive.",
    )
    fallback: bool | None = Field(
        description="True when the customer has no repeat purchase yet: spend and value are the population's."
    )
    fit_id: int | None
    value_now: float | None = Field(
        description="Trailing 12 months: margin (revenue where no order carries one) minus cost to serve."
    )
    quadrant: Quadrant | None = Field(description="retain, develop, maintain or abandon; null before a fit.")
    quadrant_reason: str | None
    winback: Winback | None = Field(description="Only for lapsed and lost customers.")
    lead: Lead | None = Field(description="Only for customers who have not bought yet.")
    scored_at: datetime


def _score_out(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in Score.model_fields if k in row}
    out["winback"] = None
    if row["winback_worth"] is not None:
        out["winback"] = {
            "worth": row["winback_worth"], "intensity": row["winback_intensity"],
            "expected_return": row["expected_return"], "cost": row["winback_cost"],
            "p_reactivation": row["p_reactivation"], "predicted_value": row["predicted_value"],
        }  # fmt: skip
    out["lead"] = None
    if row["lead_score"] is not None:
        out["lead"] = {
            "score": row["lead_score"], "fit": row["lead_fit"], "engagement": row["lead_engagement"],
            "lookalike": row["lookalike"], "channel": row["channel"],
        }  # fmt: skip
    return out


class Fit(BaseModel):
    id: int
    kind: str
    fitted_at: datetime
    as_of: datetime
    params: dict[str, float]
    log_likelihood: float
    customers: int
    converged: bool
    message: str
    holdout: dict[str, float] | None = Field(description="Predicted vs actual purchase days after `as_of`.")


class RefitRequest(BaseModel):
    as_of: AwareDatetime | None = Field(
        default=None, description="Calibration end; orders after it form the holdout check. Default: now."
    )


class RefitOut(BaseModel):
    workspace_id: str
    as_of: datetime
    customers: int
    bgnbd_fit_id: int
    gamma_gamma_fit_id: int | None
    converged: bool
    published: int = Field(description="`scores_updated` messages staged on `scores`.")
    holdout: dict[str, float] | None


@router.get(
    "/scores/{customer_id}",
    response_model=Score,
    tags=["scores"],
    summary="One customer's scores: value, quadrant, win-back, lead",
)
async def get_score(customer_id: str, request: Request, principal: Principal = Depends(require("read"))) -> Any:
    query = select(score).where(score.c.workspace_id == principal.workspace_id, score.c.customer_id == customer_id)
    async with request.app.state.runtime.engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise HTTPException(404, f"no scores for customer {customer_id!r} in this workspace (nothing known of it yet)")
    return _score_out(row)


@router.get("/models", response_model=list[Fit], tags=["models"], summary="Current and past fits, newest first")
async def get_models(request: Request, principal: Principal = Depends(require("read"))) -> Any:
    query = select(model_fit).where(model_fit.c.workspace_id == principal.workspace_id).order_by(model_fit.c.id.desc())
    async with request.app.state.runtime.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query.limit(200))).mappings()]


@router.post("/models/refit", response_model=RefitOut, tags=["models"], summary="Fit the models and rescore now")
async def post_refit(
    request: Request,
    body: RefitRequest = Body(default_factory=RefitRequest),
    principal: Principal = Depends(require("admin")),
) -> Any:
    now = request.app.state.clock.now()
    as_of = body.as_of or now
    if as_of > now:
        raise HTTPException(422, [{"field": "as_of", "problem": "must not be in the future"}])
    try:
        done = await refit(request.app.state.runtime.engine, principal.workspace_id, as_of=as_of, now=now)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from exc
    return dataclasses.asdict(done)
