"""POST /v1/events: Cartera's own flat format, one event or a batch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cartera_common.access import Principal, require
from cartera_common.events import FieldError
from ingest import intake
from ingest.body import read_json

router = APIRouter(tags=["events"])


class ItemError(BaseModel):
    index: int
    errors: list[dict[str, str]]


class Accepted(BaseModel):
    accepted: list[str]
    new: int
    errors: list[ItemError] = []


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/IncomingEvent"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/IncomingEvent"}},
                        {
                            "type": "object",
                            "properties": {
                                "batch": {"type": "array", "items": {"$ref": "#/components/schemas/IncomingEvent"}}
                            },
                        },
                    ]
                },
                "example": {
                    "type": "order_completed",
                    "customer_id": "c-1",
                    "occurred_at": "2026-11-20T10:00:00Z",
                    "order_id": "o-1",
                    "amount": 42.5,
                    "currency": "EUR",
                },
            }
        },
    }
}


@router.post(
    "/v1/events",
    status_code=202,
    response_model=Accepted,
    summary="Send one event or a batch",
    description=(
        'Takes one event, a JSON array, or `{"batch": [...]}` (up to `INGEST_MAX_BATCH`, default 1000). '
        "Answers 202 only once the events are in the intake log. In a batch, invalid items are listed in "
        "`errors` by index while the valid ones are accepted; a single invalid event, or a batch with no "
        "valid item, gets 422. Posting the same `event_id` twice is one event."
    ),
    openapi_extra=_BODY_DOC,
    responses={400: {}, 401: {}, 403: {}, 413: {}, 415: {}, 422: {}},
)
async def post_events(request: Request, principal: Principal = Depends(require("write"))) -> Any:
    settings = request.app.state.settings
    body = await intake_body(request)
    single = isinstance(body, dict) and "batch" not in body
    items = (
        [body] if single else body if isinstance(body, list) else body.get("batch") if isinstance(body, dict) else None
    )
    if not isinstance(items, list):
        raise HTTPException(
            422, [{"field": "body", "problem": 'must be an event, a list of events or {"batch": [...]}'}]
        )
    if len(items) > settings.ingest_max_batch:
        raise HTTPException(413, f"{len(items)} events in one request; the limit is {settings.ingest_max_batch}")
    if not items:
        raise HTTPException(422, [{"field": "batch", "problem": "is empty"}])
    events, bad = intake.validate(items, workspace_id=principal.workspace_id, received_at=request.app.state.clock.now())
    if not events:
        detail: list[FieldError] | list[dict[str, Any]] = (
            bad[0][1] if single else [{"index": i, "errors": errs} for i, errs in bad]
        )
        return JSONResponse({"detail": detail}, status_code=422)
    new = await intake.append(request.app.state.runtime, events)
    return Accepted(
        accepted=[e.event_id for e in events],
        new=new,
        errors=[ItemError(index=i, errors=[dict(e) for e in errs]) for i, errs in bad],
    )


async def intake_body(request: Request) -> Any:
    return await read_json(request, max_bytes=request.app.state.settings.ingest_max_body_bytes)
