"""Turns pydantic's errors into the field-and-problem list the HTTP API promises."""

from __future__ import annotations

from typing import TypedDict

from pydantic import ValidationError

from cartera_common.events.catalogue import EVENT_TYPES


class FieldError(TypedDict):
    field: str
    problem: str


def field_errors(exc: ValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err["loc"]]
        if loc and loc[0] in EVENT_TYPES:  # the discriminated union puts the tag first
            loc = loc[1:]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = ["type"]
        elif err["type"] == "nul_character":
            loc = [str((err.get("ctx") or {}).get("path", "body"))]
        out.append({"field": ".".join(loc) or "body", "problem": err["msg"]})
    return out
