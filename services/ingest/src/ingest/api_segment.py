"""The Segment HTTP Tracking API, so analytics SDKs pointed at Cartera work unchanged."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from cartera_common.access import Principal, authorize, presented_key
from cartera_common.events import FieldError
from ingest import intake
from ingest.body import read_json
from ingest.segment import SEGMENT_KINDS, SegmentError, segment_to_event

router = APIRouter(tags=["segment"])


async def _principal(request: Request, body: Any) -> Principal:
    """Segment SDKs send the write key as the Basic user; some put `writeKey` in the body instead."""
    key = presented_key(request)
    if key is None and isinstance(body, dict) and isinstance(body.get("writeKey"), str):
        key = body["writeKey"]
    return await authorize(request, key, "write")


async def _accept(request: Request, body: Any, messages: list[tuple[str, Any]], *, single: bool) -> JSONResponse:
    principal = await _principal(request, body)
    mapped: list[Any] = []
    positions: list[int] = []
    errors: list[dict[str, Any]] = []
    for index, (kind, message) in enumerate(messages):
        try:
            if not isinstance(message, dict):
                raise SegmentError("body", "each message must be a JSON object")
            mapped.append(segment_to_event(kind, message))
            positions.append(index)
        except SegmentError as exc:
            errors.append({"index": index, "errors": [{"field": exc.field, "problem": exc.problem}]})
    events, bad = intake.validate(
        mapped, workspace_id=principal.workspace_id, received_at=request.app.state.clock.now()
    )
    errors += [{"index": positions[i], "errors": errs} for i, errs in bad]
    if not events:
        detail: list[FieldError] | list[dict[str, Any]] = errors[0]["errors"] if single else errors
        return JSONResponse({"success": False, "detail": detail}, status_code=422)
    await intake.append(request.app.state.runtime, events)
    answer: dict[str, Any] = {"success": True}
    if errors:
        answer["errors"] = sorted(errors, key=lambda e: int(e["index"]))
    return JSONResponse(answer, status_code=200)


def _single(kind: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        body = await read_json(request, max_bytes=request.app.state.settings.ingest_max_body_bytes)
        return await _accept(request, body, [(kind, body)], single=True)

    endpoint.__name__ = f"segment_{kind}"
    return endpoint


for _kind in sorted(SEGMENT_KINDS):
    router.add_api_route(
        f"/v1/{_kind}",
        _single(_kind),
        methods=["POST"],
        summary=f"Segment `{_kind}` call",
        description=f"Segment's `{_kind}` call, mapped onto Cartera's catalogue. Answers like Segment: 200 `{{\"success\": true}}`.",
    )


@router.post(
    "/v1/batch",
    summary="Segment batch",
    description='Segment\'s batch call: `{"batch": [...]}` of identify/track/page/screen/group/alias messages. '
    "Valid messages are accepted; invalid ones are listed in `errors` by index.",
)
async def segment_batch(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    body = await read_json(request, max_bytes=settings.ingest_max_body_bytes)
    batch = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(batch, list) or not batch:
        raise HTTPException(422, [{"field": "batch", "problem": "must be a non-empty list of messages"}])
    if len(batch) > settings.ingest_max_batch:
        raise HTTPException(413, f"{len(batch)} messages in one batch; the limit is {settings.ingest_max_batch}")
    kinds = [str(m.get("type", "")) if isinstance(m, dict) else "" for m in batch]
    return await _accept(request, body, list(zip(kinds, batch, strict=True)), single=False)
