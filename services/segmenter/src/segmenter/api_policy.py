"""The workspace's policy (admin key): read it, and change it, which re-evaluates the portfolio."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from cartera_common.access import Principal, require
from segmenter.domain.policy import Policy
from segmenter.policy_store import current_policies, save_policy

router = APIRouter(tags=["policy"])


class PolicyOut(BaseModel):
    version: int = Field(description="0 is the built-in default, in force until the workspace sets its own.")
    created_at: datetime | None
    created_by: str | None = Field(description="The prefix of the admin key that set it.")
    policy: Policy


@router.get("/policy", response_model=PolicyOut, summary="The suspension point and portfolio rules in force")
async def get_policy(request: Request, principal: Principal = Depends(require("admin"))) -> PolicyOut:
    async with request.app.state.runtime.engine.connect() as conn:
        found = (await current_policies(conn, [principal.workspace_id]))[principal.workspace_id]
    return PolicyOut(
        version=found.version, created_at=found.created_at, created_by=found.created_by, policy=found.policy
    )


@router.put(
    "/policy",
    response_model=PolicyOut,
    summary="Replace the policy",
    description="Stores a new version and re-evaluates every customer of the workspace under it, in the background "
    "(the sweep, within seconds for most portfolios). Fields left out take their defaults.",
)
async def put_policy(body: Policy, request: Request, principal: Principal = Depends(require("admin"))) -> PolicyOut:
    now = request.app.state.clock.now()
    async with request.app.state.runtime.engine.begin() as conn:
        version = await save_policy(conn, principal.workspace_id, body, now=now, by=principal.key_prefix)
    return PolicyOut(version=version, created_at=now, created_by=principal.key_prefix, policy=body)
