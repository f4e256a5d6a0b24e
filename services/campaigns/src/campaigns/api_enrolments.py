"""Where each customer stands (read key): enrolments with their path and messages, and campaign reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns import catalogue, enrolments
from campaigns.api_campaigns import CampaignId
from campaigns.domain.uplift import Group
from campaigns.reports import report
from cartera_common.access import Principal, require

router = APIRouter(tags=["enrolments"])

MessageState = Literal["queued", "sending", "sent", "retrying", "failed", "in_doubt", "withheld"]


class Step(BaseModel):
    at: datetime
    kind: str
    step: int | None
    variant: str | None
    message_id: str | None
    coupon: str | None
    detail: str


class MessageOut(BaseModel):
    message_id: str
    enrolment_id: str
    campaign_id: str
    customer_id: str
    step: int
    variant: str
    channel: str
    state: MessageState
    recipient: str | None
    subject: str | None
    coupon: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    error: str | None


class EnrolmentOut(BaseModel):
    enrolment_id: str
    campaign_id: str
    customer_id: str
    cycle: int
    control: bool = Field(description="Held out to measure uplift: walks the sequence, is never messaged.")
    state: Literal["active", "ended"]
    step: int = Field(description="The next step to run (0-based); the step count once the last has run.")
    due_at: datetime | None
    enrolled_at: datetime
    outcome: str | None
    ended_at: datetime | None
    credit: dict[str, Any] | None = Field(description="The step (and variant) the reactivating order is credited to.")
    path: list[Step]
    messages: list[MessageOut] = Field(default_factory=list)


_MESSAGE_COLUMNS = (
    "message_id, enrolment_id, campaign_id, customer_id, step, variant, channel, state, recipient, subject, coupon, "
    "attempts, created_at, sent_at, error"
)


def _enrolment(row: Mapping[Any, Any], messages: list[MessageOut]) -> EnrolmentOut:
    e = enrolments.from_row(row)
    return EnrolmentOut(
        enrolment_id=e.id,
        campaign_id=e.campaign_id,
        customer_id=e.customer_id,
        cycle=row["cycle"],
        control=e.control,
        state=e.state,
        step=e.step,
        due_at=e.due_at,
        enrolled_at=e.enrolled_at,
        outcome=e.outcome,
        ended_at=e.ended_at,
        credit=row["credit"],
        path=[Step(**asdict(h)) for h in e.path],
        messages=messages,
    )


@router.get("/enrolments", response_model=list[EnrolmentOut], summary="Enrolments, newest first, with their paths")
async def list_enrolments(
    request: Request,
    principal: Principal = Depends(require("read")),
    customer_id: Annotated[str | None, Query(max_length=256)] = None,
    campaign_id: Annotated[str | None, Query(max_length=64)] = None,
    state: Literal["active", "ended"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[EnrolmentOut]:
    sql = text(
        f"""
        SELECT {enrolments.COLUMNS} FROM enrolment
        WHERE workspace_id = :ws AND (CAST(:cs AS text) IS NULL OR customer_id = :cs)
          AND (CAST(:cid AS text) IS NULL OR campaign_id = :cid) AND (CAST(:state AS text) IS NULL OR state = :state)
        ORDER BY enrolled_at DESC, enrolment_id LIMIT :limit
        """  # noqa: S608 - a constant column list
    )
    params = {"ws": principal.workspace_id, "cs": customer_id, "cid": campaign_id, "state": state, "limit": limit}
    async with request.app.state.runtime.engine.connect() as conn:
        rows = list((await conn.execute(sql, params)).mappings())
        messages = await _messages(conn, principal.workspace_id, [r["enrolment_id"] for r in rows])
    return [_enrolment(r, messages.get(r["enrolment_id"], [])) for r in rows]


@router.get("/enrolments/{enrolment_id}", response_model=EnrolmentOut, summary="One enrolment's path and messages")
async def get_enrolment(
    enrolment_id: str, request: Request, principal: Principal = Depends(require("read"))
) -> EnrolmentOut:
    sql = text(f"SELECT {enrolments.COLUMNS} FROM enrolment WHERE workspace_id = :ws AND enrolment_id = :id")  # noqa: S608
    async with request.app.state.runtime.engine.connect() as conn:
        row = (await conn.execute(sql, {"ws": principal.workspace_id, "id": enrolment_id})).mappings().first()
        if row is None:
            raise HTTPException(404, f"no enrolment {enrolment_id!r}")
        messages = await _messages(conn, principal.workspace_id, [enrolment_id])
    return _enrolment(row, messages.get(enrolment_id, []))


async def _messages(conn: AsyncConnection, workspace_id: str, ids: list[str]) -> dict[str, list[MessageOut]]:
    if not ids:
        return {}
    sql = text(
        f"""SELECT {_MESSAGE_COLUMNS} FROM message
        WHERE workspace_id = :ws AND enrolment_id = ANY(CAST(:ids AS text[])) ORDER BY step"""  # noqa: S608
    )
    out: dict[str, list[MessageOut]] = {}
    for r in (await conn.execute(sql, {"ws": workspace_id, "ids": ids})).mappings():
        out.setdefault(r["enrolment_id"], []).append(MessageOut(**r))
    return out


@router.get(
    "/messages",
    response_model=list[MessageOut],
    summary="Messages by state, newest first",
    description="`state=in_doubt` lists emails cut off by a crash mid-send: they may have gone, so they are never "
    "resent; check the mail server's log before acting on them.",
)
async def list_messages(
    request: Request,
    principal: Principal = Depends(require("read")),
    state: MessageState | None = None,
    customer_id: Annotated[str | None, Query(max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[MessageOut]:
    sql = text(
        f"""
        SELECT {_MESSAGE_COLUMNS} FROM message
        WHERE workspace_id = :ws AND (CAST(:state AS text) IS NULL OR state = :state)
          AND (CAST(:cs AS text) IS NULL OR customer_id = :cs)
        ORDER BY created_at DESC, message_id LIMIT :limit
        """  # noqa: S608 - a constant column list
    )
    params = {"ws": principal.workspace_id, "state": state, "cs": customer_id, "limit": limit}
    async with request.app.state.runtime.engine.connect() as conn:
        return [MessageOut(**r) for r in (await conn.execute(sql, params)).mappings()]


class Interval(BaseModel):
    low: float
    high: float


class GroupOut(BaseModel):
    customers: int
    reactivated: int
    reactivation_rate: float | None
    recovered_revenue: float
    revenue_per_customer: float | None


class UpliftOut(BaseModel):
    rate_uplift: float = Field(description="Treatment minus control reactivation rate (0.03 = 3 points).")
    rate_interval: Interval
    revenue_uplift_per_customer: float
    revenue_interval: Interval | None
    incremental_revenue: float = Field(description="Revenue uplift per customer × treatment customers.")
    offer_cost: float
    net_incremental_revenue: float
    net_interval: Interval | None


class StepOut(BaseModel):
    step: int
    variant: str
    sent: int
    failed: int
    delivered: int
    opened: int
    clicked: int
    replied: int
    bounced: int
    reactivated: int
    by_coupon: int = Field(description="Reactivations whose order carried this step's coupon.")
    recovered_revenue: float


class ReportOut(BaseModel):
    campaign_id: str
    cycle: int | None
    enrolled: int
    running: int
    treatment: GroupOut
    control: GroupOut
    uplift: UpliftOut | None
    confidence: float = 0.95
    notes: list[str]
    steps: list[StepOut]
    cycles: list[dict[str, float]]


def _group(g: Group) -> GroupOut:
    return GroupOut(
        customers=g.customers,
        reactivated=g.reactivated,
        reactivation_rate=g.rate if g.customers else None,
        recovered_revenue=g.revenue,
        revenue_per_customer=g.revenue_per_customer if g.customers else None,
    )


@router.get(
    "/campaigns/{campaign_id}/report",
    response_model=ReportOut,
    tags=["campaigns"],
    summary="Funnel per step and variant, and the uplift against the control group",
)
async def get_report(
    campaign_id: CampaignId,
    request: Request,
    principal: Principal = Depends(require("read")),
    cycle: Annotated[
        int | None, Query(ge=1, le=100_000, description="One cycle of the loop; all cycles when absent.")
    ] = None,
) -> ReportOut:
    async with request.app.state.runtime.engine.connect() as conn:
        known = (await catalogue.listed(conn, [principal.workspace_id]))[principal.workspace_id]
        if campaign_id not in known:
            raise HTTPException(404, f"no campaign {campaign_id!r}")
        r = await report(conn, principal.workspace_id, campaign_id, cycle)
    u = r.uplift
    uplift_out = None
    if u is not None:
        uplift_out = UpliftOut(
            rate_uplift=u.rate_uplift,
            rate_interval=Interval(low=u.rate_interval.low, high=u.rate_interval.high),
            revenue_uplift_per_customer=u.revenue_uplift_per_customer,
            revenue_interval=Interval(low=u.revenue_interval.low, high=u.revenue_interval.high)
            if u.revenue_interval
            else None,
            incremental_revenue=u.incremental_revenue,
            offer_cost=u.offer_cost,
            net_incremental_revenue=u.net_incremental_revenue,
            net_interval=Interval(low=u.net_interval.low, high=u.net_interval.high) if u.net_interval else None,
        )
    return ReportOut(
        campaign_id=r.campaign_id,
        cycle=r.cycle,
        enrolled=r.enrolled,
        running=r.running,
        treatment=_group(r.treatment),
        control=_group(r.control),
        uplift=uplift_out,
        notes=r.notes,
        steps=[StepOut(**s.__dict__) for s in r.steps],
        cycles=r.cycles,
    )
