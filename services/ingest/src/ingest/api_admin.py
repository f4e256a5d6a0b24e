"""Workspaces and keys (admin key): create, list, revoke."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from cartera_common.access import Principal, Role, require
from ingest import keys
from ingest.bootstrap import DEFAULT_WORKSPACE

router = APIRouter(tags=["workspaces and keys"])


class NewKey(BaseModel):
    role: Role = Field(description="write: post events; read: read APIs; admin: everything, keys and policy.")


class IssuedKey(BaseModel):
    key: str = Field(description="Shown once; only its hash is stored.")
    prefix: str
    role: Role
    workspace_id: str


class KeyOut(BaseModel):
    prefix: str
    role: str
    workspace_id: str
    created_at: datetime
    revoked_at: datetime | None


class NewWorkspace(BaseModel):
    workspace_id: str = Field(pattern=keys.WORKSPACE_ID.pattern, description="Lower-case slug, e.g. florist-madrid.")
    name: str = Field(min_length=1, max_length=200)


class CreatedWorkspace(BaseModel):
    workspace_id: str
    admin_key: IssuedKey


@router.post("/v1/keys", status_code=201, response_model=IssuedKey, summary="Create a key in your workspace")
async def create_key(body: NewKey, request: Request, principal: Principal = Depends(require("admin"))) -> IssuedKey:
    async with request.app.state.runtime.engine.begin() as conn:
        key = await keys.add_key(
            conn, workspace_id=principal.workspace_id, role=body.role, now=request.app.state.clock.now()
        )
    return IssuedKey(key=key, prefix=key[:10], role=body.role, workspace_id=principal.workspace_id)


@router.get("/v1/keys", response_model=list[KeyOut], summary="List your workspace's keys (prefixes only)")
async def get_keys(request: Request, principal: Principal = Depends(require("admin"))) -> list[KeyOut]:
    async with request.app.state.runtime.engine.connect() as conn:
        found = await keys.list_keys(conn, workspace_id=principal.workspace_id)
    return [
        KeyOut(
            prefix=k.prefix, role=k.role, workspace_id=k.workspace_id, created_at=k.created_at, revoked_at=k.revoked_at
        )
        for k in found
    ]


@router.delete("/v1/keys/{prefix}", status_code=204, summary="Revoke a key by its prefix")
async def delete_key(prefix: str, request: Request, principal: Principal = Depends(require("admin"))) -> None:
    async with request.app.state.runtime.engine.begin() as conn:
        revoked = await keys.revoke_key(
            conn, workspace_id=principal.workspace_id, prefix=prefix, now=request.app.state.clock.now()
        )
    if not revoked:
        raise HTTPException(404, f"no active key with prefix {prefix!r} in this workspace")


@router.post(
    "/v1/workspaces",
    status_code=201,
    response_model=CreatedWorkspace,
    summary="Create a workspace (admin key of the default workspace)",
)
async def create_workspace(
    body: NewWorkspace, request: Request, principal: Principal = Depends(require("admin"))
) -> CreatedWorkspace:
    if principal.workspace_id != DEFAULT_WORKSPACE:
        raise HTTPException(403, "only an admin key of the default workspace can create workspaces")
    now = request.app.state.clock.now()
    async with request.app.state.runtime.engine.begin() as conn:
        if not await keys.create_workspace(conn, workspace_id=body.workspace_id, name=body.name):
            raise HTTPException(409, f"workspace {body.workspace_id!r} already exists")
        key = await keys.add_key(conn, workspace_id=body.workspace_id, role="admin", now=now)
    return CreatedWorkspace(
        workspace_id=body.workspace_id,
        admin_key=IssuedKey(key=key, prefix=key[:10], role="admin", workspace_id=body.workspace_id),
    )
