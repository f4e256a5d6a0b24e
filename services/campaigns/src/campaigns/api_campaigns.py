"""Campaigns, templates and pacing over HTTP: read with a read key, change with an admin key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from campaigns import catalogue
from campaigns.delivery.templates import TemplateError, Templates, TemplateSource, validate
from campaigns.domain.model import Campaign
from campaigns.domain.pacing import PacingRules
from cartera_common.access import Principal, require
from cartera_common.events.base import RefusesNul

router = APIRouter(tags=["campaigns"])

_CUSTOM_ROWS = text("SELECT template_id, subject, body, html FROM template WHERE workspace_id = :ws")
_SAVE_TEMPLATE = text(
    """
    INSERT INTO template (workspace_id, template_id, subject, body, html, updated_at)
    VALUES (:ws, :id, :subject, :body, :html, :at)
    ON CONFLICT (workspace_id, template_id) DO UPDATE
        SET subject = EXCLUDED.subject, body = EXCLUDED.body, html = EXCLUDED.html, updated_at = EXCLUDED.updated_at
    """
)


CampaignId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class CampaignOut(BaseModel):
    enabled: bool
    ready_made: bool
    customised: bool = Field(description="A ready-made campaign whose definition the workspace replaced.")
    version: int = Field(description="0: never changed by the workspace.")
    updated_at: datetime | None
    campaign: Campaign


class TemplateIn(RefusesNul):
    subject: str = Field(min_length=1, max_length=500, description="Jinja2; one line.")
    text: str = Field(min_length=1, max_length=50_000, description="Jinja2 plain-text body.")
    html: str | None = Field(
        default=None, max_length=200_000, description="Jinja2 HTML; made from the text when absent."
    )


class TemplateOut(TemplateIn):
    template_id: str
    built_in: bool


def _out(item: catalogue.Listed) -> CampaignOut:
    return CampaignOut(
        enabled=item.enabled,
        ready_made=item.ready_made,
        customised=item.customised,
        version=item.version,
        updated_at=item.updated_at,
        campaign=item.campaign,
    )


async def _one(request: Request, workspace_id: str, campaign_id: str) -> CampaignOut:
    async with request.app.state.runtime.engine.connect() as conn:
        found = (await catalogue.listed(conn, [workspace_id]))[workspace_id]
    if campaign_id not in found:
        raise HTTPException(404, f"no campaign {campaign_id!r}")
    return _out(found[campaign_id])


@router.get("/campaigns", response_model=list[CampaignOut], summary="The workspace's campaigns, ready-made ones first")
async def list_campaigns(request: Request, principal: Principal = Depends(require("read"))) -> list[CampaignOut]:
    async with request.app.state.runtime.engine.connect() as conn:
        found = (await catalogue.listed(conn, [principal.workspace_id]))[principal.workspace_id]
    return [_out(item) for item in found.values()]


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, summary="One campaign with its steps")
async def get_campaign(
    campaign_id: CampaignId, request: Request, principal: Principal = Depends(require("read"))
) -> CampaignOut:
    return await _one(request, principal.workspace_id, campaign_id)


@router.put(
    "/campaigns/{campaign_id}",
    response_model=CampaignOut,
    summary="Create or replace a campaign",
    description="A new id creates the workspace's own campaign (chosen by its audience, before the ready-made "
    "route at equal priority); a ready-made id replaces that definition for this workspace. Enrolments already "
    "running carry on with the new steps from the step they reached. Every template a step names must exist.",
)
async def put_campaign(
    campaign_id: CampaignId, body: Campaign, request: Request, principal: Principal = Depends(require("admin"))
) -> CampaignOut:
    if body.id != campaign_id:
        raise HTTPException(422, f"campaign.id {body.id!r} differs from the path's {campaign_id!r}")
    async with request.app.state.runtime.engine.begin() as conn:
        custom = await _custom_ids(conn, principal.workspace_id)
        known = Templates().ids() | custom
        for i, step in enumerate(body.steps):
            for template_id in (step.template_id, *(v.template_id for v in step.variants)):
                if template_id not in known:
                    raise HTTPException(
                        422, f"steps[{i}]: no template {template_id!r}; PUT /templates/{template_id} first"
                    )
        now = request.app.state.clock.now()
        await catalogue.save(
            conn, principal.workspace_id, body, campaign_id=campaign_id, enabled=True, at=now, by=principal.key_prefix
        )
    return await _one(request, principal.workspace_id, campaign_id)


async def _switch(request: Request, principal: Principal, campaign_id: str, enabled: bool) -> CampaignOut:
    current = await _one(request, principal.workspace_id, campaign_id)
    definition = None if current.ready_made and not current.customised else current.campaign
    async with request.app.state.runtime.engine.begin() as conn:
        now = request.app.state.clock.now()
        await catalogue.save(
            conn,
            principal.workspace_id,
            definition,
            campaign_id=campaign_id,
            enabled=enabled,
            at=now,
            by=principal.key_prefix,
        )
    return await _one(request, principal.workspace_id, campaign_id)


@router.post(
    "/campaigns/{campaign_id}/enable", response_model=CampaignOut, summary="Let the campaign enrol customers again"
)
async def enable(
    campaign_id: CampaignId, request: Request, principal: Principal = Depends(require("admin"))
) -> CampaignOut:
    return await _switch(request, principal, campaign_id, True)


@router.post(
    "/campaigns/{campaign_id}/disable",
    response_model=CampaignOut,
    summary="Stop enrolling; running enrolments finish their sequence",
)
async def disable(
    campaign_id: CampaignId, request: Request, principal: Principal = Depends(require("admin"))
) -> CampaignOut:
    return await _switch(request, principal, campaign_id, False)


@router.get("/pacing", response_model=PacingRules, summary="Frequency cap, quiet hours and daily sending limit")
async def get_pacing(request: Request, principal: Principal = Depends(require("read"))) -> PacingRules:
    async with request.app.state.runtime.engine.connect() as conn:
        return (await catalogue.pacing(conn, [principal.workspace_id]))[principal.workspace_id]


@router.put("/pacing", response_model=PacingRules, summary="Replace the pacing rules")
async def put_pacing(
    body: PacingRules, request: Request, principal: Principal = Depends(require("admin"))
) -> PacingRules:
    async with request.app.state.runtime.engine.begin() as conn:
        await catalogue.save_pacing(conn, principal.workspace_id, body, request.app.state.clock.now())
    return body


@router.get("/templates", response_model=list[TemplateOut], summary="Built-in templates and the workspace's own")
async def list_templates(request: Request, principal: Principal = Depends(require("read"))) -> list[TemplateOut]:
    async with request.app.state.runtime.engine.connect() as conn:
        rows = (await conn.execute(_CUSTOM_ROWS, {"ws": principal.workspace_id})).all()
    custom = {r.template_id: TemplateSource(r.subject, r.body, r.html) for r in rows}
    built_in = Templates()
    out = []
    for template_id in sorted(built_in.ids() | custom.keys()):
        source = custom.get(template_id) or built_in.source(template_id)
        assert source is not None
        out.append(
            TemplateOut(
                template_id=template_id,
                built_in=template_id not in custom,
                subject=source.subject,
                text=source.text,
                html=source.html,
            )
        )
    return out


@router.put(
    "/templates/{template_id}",
    response_model=TemplateOut,
    summary="Add a template or replace a built-in one for this workspace",
    description="Sandboxed Jinja2. An unknown variable or a syntax error is refused with the line. Every email "
    "gets the unsubscribe link even if the template leaves it out.",
)
async def put_template(
    template_id: CampaignId, body: TemplateIn, request: Request, principal: Principal = Depends(require("admin"))
) -> TemplateOut:
    source = TemplateSource(body.subject, body.text, body.html)
    try:
        validate(source)
    except TemplateError as exc:
        raise HTTPException(422, f"template {template_id!r}: {exc}") from exc
    async with request.app.state.runtime.engine.begin() as conn:
        await conn.execute(
            _SAVE_TEMPLATE,
            {
                "ws": principal.workspace_id,
                "id": template_id,
                "subject": body.subject,
                "body": body.text,
                "html": body.html,
                "at": request.app.state.clock.now(),
            },
        )
    return TemplateOut(template_id=template_id, built_in=False, **body.model_dump())


async def _custom_ids(conn: AsyncConnection, workspace_id: str) -> set[str]:
    return {r.template_id for r in await conn.execute(_CUSTOM_ROWS, {"ws": workspace_id})}
