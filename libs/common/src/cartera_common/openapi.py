"""Publishes the event catalogue in each service's OpenAPI, so integrators see every field."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cartera_common.events import INCOMING_EVENT


def with_event_schemas(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        events = INCOMING_EVENT.json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(events.pop("$defs", {}))
        components["IncomingEvent"] = events
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
