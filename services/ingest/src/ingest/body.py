"""Reading a request body with the limits and errors the intake API promises (400, 413, 415)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import HTTPException, Request

JSON_TYPES = ("application/json", "text/plain")  # Segment's browser SDK posts text/plain


async def read_json(request: Request, *, max_bytes: int) -> Any:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise HTTPException(415, f"unsupported content type {content_type!r}; send application/json")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"body is {declared} bytes; the limit is {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise HTTPException(413, f"body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"the body is not valid JSON: {exc}") from exc
