"""What every service serves besides its own API, and the error shape every service answers with."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.types import ASGIApp, Receive, Scope, Send

from cartera_common.errors import is_transient
from cartera_common.logs import log_context
from cartera_common.tracing import request_span, request_trace

ReadyCheck = Callable[[], Awaitable[dict[str, str]]]


class RefuseNul:
    """A %00 in a path or query would reach PostgreSQL, which cannot store it: refuse it up front.

    Plain ASGI rather than BaseHTTPMiddleware, which costs every request a task and a queue.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"") or b"%00" in scope.get("raw_path", b"")
        ):
            response = JSONResponse({"detail": "the URL must not contain the NUL character (%00)"}, status_code=400)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Traced:
    """Each API request runs in a span (continuing the caller's `traceparent`) and a log context, so
    what it writes and logs carries its trace. Health, readiness and metrics are left out."""

    QUIET = frozenset({"/healthz", "/readyz", "/metrics"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.QUIET:
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"traceparent"), None)
        with request_span(f"{scope['method']} {scope['path']}", incoming) as traceparent:
            with log_context(method=scope["method"], path=scope["path"]), request_trace(traceparent):
                await self.app(scope, receive, send)


def install_common_routes(app: FastAPI, ready: ReadyCheck) -> None:
    app.add_middleware(Traced)
    app.add_middleware(RefuseNul)

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: database and broker reachable")
    async def readyz() -> Response:
        checks = await ready()
        ok = checks.get("database") == "ok" and checks.get("broker") == "ok"
        return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=True)
    async def metrics() -> Response:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several workers: the sum of all of them
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The transaction failed or its commit went unanswered; event ids make a retry harmless.
        return JSONResponse(
            {"detail": "the database is unavailable; retry shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(DBAPIError)
    async def database_conflict(request: Request, exc: Exception) -> JSONResponse:
        # A deadlock or serialisation failure rolled the whole transaction back: nothing was
        # written, and the same request again will most likely go through. Anything else is a bug.
        if not is_transient(exc):
            raise exc
        return JSONResponse(
            {"detail": "the request collided with concurrent work and was rolled back; retry it"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"detail": "the body is not valid JSON"}, status_code=400)
        detail = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")) or "body",
                "problem": e["msg"],
            }
            for e in errors
        ]
        return JSONResponse({"detail": detail}, status_code=422)
