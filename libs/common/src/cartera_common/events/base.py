"""Field types and the base every incoming event shares."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

Id = Annotated[str, Field(min_length=1, max_length=256)]
Text = Annotated[str, Field(max_length=2000)]
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]
Probability = Annotated[float, Field(ge=0, le=1)]


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


TimeZone = Annotated[str, AfterValidator(_known_zone), Field(description="IANA zone, e.g. Europe/Madrid")]


class RefusesNul(BaseModel):
    """A model whose input may hold no U+0000 anywhere: a 422 naming where, not a failure in PostgreSQL."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold U+0000; refusing it here keeps it from failing deep downstream.
        # orjson escapes it as \u0000, so one fast dump finds it; the walk only runs when it is there.
        try:
            if b"\\u0000" not in orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS):
                return data
        except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits: walk it instead, the field check refuses it
            pass
        path = _nul_path(data, "")
        if path is not None:
            raise PydanticCustomError(
                "nul_character", "must not contain the NUL character (U+0000)", {"path": path or "body"}
            )
        return data


class IncomingBase(RefusesNul):
    """Fields every event carries in Cartera's flat HTTP format; unknown extra fields are kept."""

    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=True)

    customer_id: Id = Field(description="The business's own id for the customer.")
    event_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None,
        description="Idempotency key: the same id posted twice is one event. "
        "When absent and occurred_at is given, an id is derived from the content.",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When it happened (ISO 8601 with offset); defaults to receipt time."
    )
    source: Annotated[str, Field(max_length=128)] | None = Field(
        default=None, description="The system that sent it (shop, pos, crm, …)."
    )


def _nul_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return sub
            found = _nul_path(item, sub)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}.{index}")
            if found is not None:
                return found
    return None
