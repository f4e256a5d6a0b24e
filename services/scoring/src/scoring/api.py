"""Scores and models over HTTP: read with a read key; refitting needs an admin key."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select

from cartera_common.access import Principal, require
from scoring.refit import refit
from scoring.tables import model_fit, score

router = APIRouter()


class Score(BaseModel):
    customer_id: str
    p_alive: float = Field(description="Probability the customer is still a customer (BG/NBD).")
    expected_30: float = Field(description="Expected purchase days in the next 30 days.")
    expected_90: float
    expected_365: float
    expected_order_value: float | None = Field(description="Gamma-Gamma expected spend per purchase.")
    clv: float | None = Field(description="Discounted predicted value of the next 12 months.")
    fallback: bool = Field(
        description="True when the customer has no repeat purchase yet: spend and value are the population's."
    )
    fit_id: int
    scored_at: datetime


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


@router.get("/scores/{customer_id}", response_model=Score, tags=["scores"], summary="One customer's value scores")
async def get_score(customer_id: str, request: Request, principal: Principal = Depends(require("read"))) -> Any:
    query = select(score).where(score.c.workspace_id == principal.workspace_id, score.c.customer_id == customer_id)
    async with request.app.state.runtime.engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise HTTPException(404, f"no scores for customer {customer_id!r} in this workspace (no order, or no fit yet)")
    return dict(row)


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
