"""Leads ranked by score (read key), and the workspace's scoring rules (admin key)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import and_, select, tuple_

from cartera_common.access import Principal, require
from scoring.domain.rules import Channel, ScoringRules
from scoring.rescore import rescore_workspace
from scoring.rules_store import current_rules, save_rules
from scoring.tables import customer_profile, score

router = APIRouter()


class LeadItem(BaseModel):
    customer_id: str
    lead_score: float = Field(description="fit + engagement + look-alike points (0-100 with the default rules).")
    channel: Channel = Field(description="The contact channel the score's band calls for.")
    fit: float = Field(description="Points from the workspace's fit rules.")
    engagement: float = Field(description="Points from visits, opens, clicks, demos, trials and quotes, decayed.")
    lookalike: float = Field(description="Similarity (0-1) to the top customers by industry, size and region.")
    status: str | None = Field(description="prospect or potential, as the segmenter last said; null: not yet known.")
    industry: str | None
    company_size: str | None
    region: str | None
    scored_at: datetime


class LeadPage(BaseModel):
    items: list[LeadItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class RulesOut(BaseModel):
    version: int = Field(description="0 is the built-in default, in force until the workspace sets its own.")
    updated_at: datetime | None
    updated_by: str | None = Field(description="The prefix of the admin key that set them.")
    rules: ScoringRules


class RulesSaved(RulesOut):
    published: int = Field(description="`scores_updated` messages staged by rescoring the workspace.")


_CURSOR_PREFIX = b"l1:"


def _encode_cursor(lead_score: float, customer_id: str) -> str:
    raw = _CURSOR_PREFIX + orjson.dumps([lead_score, customer_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    """Where a page resumes; 422 for anything this API did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if raw.startswith(_CURSOR_PREFIX):
            value, cid = orjson.loads(raw[len(_CURSOR_PREFIX) :])
            if isinstance(value, int | float) and isinstance(cid, str):
                return float(value), cid
    except (binascii.Error, ValueError, TypeError):
        pass
    raise HTTPException(422, [{"field": "cursor", "problem": "not a cursor returned by this API"}])


@router.get(
    "/leads",
    response_model=LeadPage,
    tags=["leads"],
    summary="Leads, best first, with their channel and the parts of their score",
    description="Customers who have not bought yet, by lead score (highest first). Pass the answer's "
    "`next_cursor` as `cursor` until it is null. `channel` (repeatable) keeps only those leads.",
)
async def list_leads(
    request: Request,
    principal: Principal = Depends(require("read")),
    channel: Annotated[list[Channel] | None, Query(description="Only leads for this channel; repeatable.")] = None,
    cursor: Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
) -> Any:
    p = customer_profile
    query = (
        select(
            score.c.customer_id, score.c.lead_score, score.c.channel, score.c.lead_fit.label("fit"),
            score.c.lead_engagement.label("engagement"), score.c.lookalike, score.c.scored_at, p.c.status,
            p.c.industry, p.c.company_size, p.c.region,
        )
        .select_from(
            score.outerjoin(p, and_(p.c.workspace_id == score.c.workspace_id, p.c.customer_id == score.c.customer_id))
        )
        .where(score.c.workspace_id == principal.workspace_id, score.c.lead_score.is_not(None))
        .order_by(score.c.lead_score.desc(), score.c.customer_id.desc())
        .limit(limit + 1)
    )  # fmt: skip
    if channel:
        query = query.where(score.c.channel.in_(channel))
    if cursor is not None:
        after_score, after_id = _decode_cursor(cursor)
        query = query.where(tuple_(score.c.lead_score, score.c.customer_id) < tuple_(after_score, after_id))
    async with request.app.state.runtime.engine.connect() as conn:
        rows = [dict(r) for r in (await conn.execute(query)).mappings()]
    items, more = rows[:limit], len(rows) > limit
    last = items[-1] if items else None
    return {
        "items": items,
        "next_cursor": _encode_cursor(last["lead_score"], last["customer_id"]) if more and last else None,
    }


@router.get("/rules", response_model=RulesOut, tags=["rules"], summary="The scoring rules in force")
async def get_rules(request: Request, principal: Principal = Depends(require("admin"))) -> Any:
    async with request.app.state.runtime.engine.connect() as conn:
        found = await current_rules(conn, principal.workspace_id)
    return {
        "version": found.version,
        "updated_at": found.updated_at,
        "updated_by": found.updated_by,
        "rules": found.rules,
    }


@router.put(
    "/rules",
    response_model=RulesSaved,
    tags=["rules"],
    summary="Replace the scoring rules",
    description="Quadrant thresholds, win-back costs, lead fit rules, engagement weights and half-life, look-alike "
    "weights and channel bands. Fields left out take their defaults. Every customer of the workspace is rescored "
    "under the new rules before the answer.",
)
async def put_rules(body: ScoringRules, request: Request, principal: Principal = Depends(require("admin"))) -> Any:
    now = request.app.state.clock.now()
    async with request.app.state.runtime.engine.begin() as conn:
        version = await save_rules(conn, principal.workspace_id, body, now=now, by=principal.key_prefix)
        published = await rescore_workspace(conn, principal.workspace_id, now=now)
    return {
        "version": version,
        "updated_at": now,
        "updated_by": principal.key_prefix,
        "rules": body,
        "published": published,
    }
