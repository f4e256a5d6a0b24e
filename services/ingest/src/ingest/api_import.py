"""POST /v1/import: history as NDJSON or CSV, streamed, idempotent on re-upload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from cartera_common.access import Principal, require
from cartera_common.events.envelope import EncodedEvent, encode_incoming
from ingest import intake
from ingest.importer import ImportFormatError, ImportRow, parse_csv, parse_ndjson, sniff_format

router = APIRouter(tags=["import"])

CHUNK_ROWS = 2000
MAX_REPORTED_ERRORS = 100


class RejectedLine(BaseModel):
    line: int
    errors: list[dict[str, str]]


class ImportSummary(BaseModel):
    accepted: int
    new: int
    rejected: int
    errors: list[RejectedLine]
    errors_truncated: bool


@router.post(
    "/v1/import",
    response_model=ImportSummary,
    summary="Bulk import history (NDJSON or CSV)",
    description=(
        "Streams the body: any size, never held in memory. `Content-Type: application/x-ndjson` takes one "
        "Cartera event a line (type defaults to order_completed); `text/csv` takes orders with columns "
        "customer_id, occurred_at, amount and optional order_id, currency, margin, coupon_code, category. "
        "Rows are written in chunks as they are read; re-uploading the same file changes nothing. The "
        "summary counts accepted and rejected rows and lists the first 100 rejections by line."
    ),
    openapi_extra={"requestBody": {"content": {"application/x-ndjson": {}, "text/csv": {}}, "required": True}},
)
async def import_history(
    request: Request,
    principal: Principal = Depends(require("write")),
    format: str | None = Query(default=None, pattern="^(ndjson|csv)$", description="Overrides the content type."),
) -> ImportSummary:
    kind = format or sniff_format(request.headers.get("content-type"), None)
    if kind is None:
        raise HTTPException(415, "send text/csv or application/x-ndjson (or pass ?format=csv|ndjson)")
    rows = parse_csv(_chunks(request)) if kind == "csv" else parse_ndjson(_chunks(request))
    summary = ImportSummary(accepted=0, new=0, rejected=0, errors=[], errors_truncated=False)
    pending: list[EncodedEvent] = []
    received = request.app.state.clock.now()
    try:
        async for row in rows:
            if isinstance(row, ImportRow):
                pending.append(
                    encode_incoming(
                        row.event, workspace_id=principal.workspace_id, received_at=received, source="import"
                    )
                )
                if len(pending) >= CHUNK_ROWS:
                    await _flush(request, pending, summary)
            else:
                summary.rejected += 1
                if len(summary.errors) < MAX_REPORTED_ERRORS:
                    summary.errors.append(RejectedLine(line=row.line, errors=[dict(e) for e in row.errors]))
                else:
                    summary.errors_truncated = True
    except ImportFormatError as exc:
        raise HTTPException(422, [{"field": "header", "problem": str(exc)}]) from exc
    await _flush(request, pending, summary)
    return summary


async def _flush(request: Request, pending: list[EncodedEvent], summary: ImportSummary) -> None:
    if pending:
        summary.new += await intake.append(request.app.state.runtime, pending)
        summary.accepted += len(pending)
        pending.clear()


async def _chunks(request: Request) -> AsyncIterator[bytes]:
    chunk: Any
    async for chunk in request.stream():
        if chunk:
            yield chunk
