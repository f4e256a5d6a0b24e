"""Streaming parsers for bulk history import: NDJSON or CSV bytes in, validated events or rejections out.

Pure (no database, no web framework) so the rules are tested on plain bytes. Uploads are read line by
line and never held whole; one line is capped at `MAX_LINE_BYTES`. Line numbers are 1-based physical
lines, blank ones included, so a rejection points at the line a spreadsheet or editor shows.
Ids are derived from the content where the file has none, so uploading the same file twice dedupes.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from cartera_common.events import INCOMING_EVENT, FieldError, field_errors
from cartera_common.events.base import IncomingBase

MAX_LINE_BYTES = 1 << 20
DEFAULT_TYPE = "order_completed"
ORDER_TYPES = frozenset({"order_completed", "order_refunded", "order_cancelled"})
REQUIRED_CSV_COLUMNS = ("customer_id", "occurred_at", "amount")
_ALIASES = {
    "customer": "customer_id", "client_id": "customer_id",
    "date": "occurred_at", "order_date": "occurred_at", "timestamp": "occurred_at", "created_at": "occurred_at",
    "order": "order_id", "invoice": "order_id", "invoice_id": "order_id",
    "total": "amount", "revenue": "amount", "value": "amount",
}  # fmt: skip
_NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
                 "application/jsonlines", "application/json-seq"}  # fmt: skip
_CSV_TYPES = {"text/csv", "application/csv", "text/comma-separated-values", "text/tab-separated-values"}
ImportFormat = Literal["ndjson", "csv"]
_EXTENSIONS: dict[str, ImportFormat] = {".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv", ".tsv": "csv"}
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    event: IncomingBase


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int
    errors: list[FieldError]


class ImportFormatError(ValueError):
    """The file as a whole cannot be read (no header, missing columns), so no row is worth reporting."""


def sniff_format(content_type: str | None, filename: str | None) -> ImportFormat | None:
    """A specific content type wins; generic ones (octet-stream, text/plain, Excel's CSV type) defer to the name."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in _NDJSON_TYPES:
        return "ndjson"
    if media in _CSV_TYPES:
        return "csv"
    return _EXTENSIONS.get(PurePosixPath((filename or "").replace("\\", "/")).suffix.lower())


def _reject(line: int, problem: str) -> RejectedRow:
    return RejectedRow(line, [{"field": "body", "problem": problem}])


async def _physical_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes | None]]:
    """Numbered lines without their terminator; None marks a line dropped for exceeding `MAX_LINE_BYTES`."""
    pending, number, too_long = bytearray(), 0, False
    async for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            number += 1
            line = pending + chunk[start:end]
            yield number, None if too_long or len(line) > MAX_LINE_BYTES else bytes(line)
            pending.clear()
            too_long, start = False, end + 1
        if not too_long:
            pending += chunk[start:]
        if len(pending) > MAX_LINE_BYTES:
            pending.clear()
            too_long = True
    if pending or too_long:
        yield number + 1, None if too_long else bytes(pending)


async def _text_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, str | RejectedRow]]:
    """Decoded non-blank lines (BOM and CR removed), or the rejection for a line that cannot be decoded."""
    async for number, raw in _physical_lines(chunks):
        if raw is None:
            yield number, _reject(number, f"line is longer than {MAX_LINE_BYTES} bytes")
            continue
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        try:
            text = raw.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError as exc:
            yield number, _reject(number, f"not valid UTF-8 at byte {exc.start}")
            continue
        if text.strip():
            yield number, text


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _canonical_amount(value: Any) -> str:
    """42.5, "42.50" and "42,50" give one key, so a re-export with other formatting still dedupes."""
    try:  # str, not format "f": an exponent like 1e999999999 must not expand into a huge string
        return str(Decimal(str(value).replace(",", ".")).normalize())
    except InvalidOperation:
        return str(value)


def _aware(value: str) -> datetime | None:
    """ISO 8601 read leniently: a bare date is midnight, and a time without offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _canonical_time(value: Any) -> str:
    moment = _aware(str(value))
    return moment.astimezone(UTC).isoformat() if moment else str(value)


def _order_event_id(data: dict[str, Any], kind: str) -> str | None:
    """One id per order, so re-uploads dedupe; refunds add date and amount, as one order may have several."""
    order_id = data.get("order_id")
    if not isinstance(order_id, str | int) or isinstance(order_id, bool):
        return None
    key = str(order_id)
    if kind == "order_refunded":
        key += ":" + _digest(f"{_canonical_time(data.get('occurred_at'))}|{_canonical_amount(data.get('amount'))}")[:12]
    event_id = f"import:{kind}:{key}"
    return event_id if len(event_id) <= 128 else f"import:{kind}:{_digest(key)}"


def _with_import_ids(data: dict[str, Any]) -> dict[str, Any]:
    """Fills the type, the order id of a completed order and the event id of order events."""
    data.setdefault("type", DEFAULT_TYPE)
    kind = data["type"]
    if not isinstance(kind, str) or kind not in ORDER_TYPES:
        return data
    if kind == "order_completed" and data.get("order_id") is None and data.get("occurred_at") is not None:
        when, amount = _canonical_time(data["occurred_at"]), _canonical_amount(data.get("amount"))
        data["order_id"] = "import:" + _digest(f"{data.get('customer_id')}|{when}|{amount}")[:16]
    if data.get("event_id") is None and (event_id := _order_event_id(data, kind)) is not None:
        data["event_id"] = event_id
    return data


def _validated(line: int, data: dict[str, Any]) -> ImportRow | RejectedRow:
    try:
        return ImportRow(line, INCOMING_EVENT.validate_python(_with_import_ids(data)))
    except ValidationError as exc:
        return RejectedRow(line, field_errors(exc))


async def parse_ndjson(chunks: AsyncIterator[bytes]) -> AsyncIterator[ImportRow | RejectedRow]:
    """One flat Cartera event per line, any catalogue type; `type` defaults to order_completed.

    Dates must carry an offset, as in the HTTP API. A leading RS (application/json-seq) is ignored.
    A completed order without order_id gets one derived from customer, date and amount.
    """
    async for number, text in _text_lines(chunks):
        if isinstance(text, RejectedRow):
            yield text
            continue
        try:
            data = orjson.loads(text.lstrip("\x1e"))
        except orjson.JSONDecodeError as exc:
            yield _reject(number, f"not valid JSON: {exc}")
            continue
        if not isinstance(data, dict):
            yield _reject(number, f"expected a JSON object, got {type(data).__name__}")
            continue
        yield _validated(number, data)


def _column_name(header: str) -> str:
    name = header.strip().lower().replace(" ", "_").replace("-", "_")
    return _ALIASES.get(name, name)


def _csv_columns(cells: list[str]) -> list[str | None]:
    """Canonical names per column (None for an unnamed one); raises when required ones are missing or doubled."""
    columns = [_column_name(cell) or None for cell in cells]
    named = [c for c in columns if c]
    if doubled := sorted({c for c in named if named.count(c) > 1}):
        raise ImportFormatError(f"more than one column means {', '.join(doubled)}")
    if missing := [c for c in REQUIRED_CSV_COLUMNS if c not in named]:
        raise ImportFormatError(f"missing required columns: {', '.join(missing)} (found: {', '.join(cells)})")
    return columns


def _csv_time(value: str) -> str:
    """Spreadsheets export dates without offsets; anything unreadable is left for validation to judge."""
    moment = _aware(value)
    return moment.isoformat() if moment else value


def _decimal_comma(value: str) -> str:
    return value.replace(",", ".") if "." not in value and value.count(",") == 1 else value


_CELL_RULES: dict[str, Callable[[str], str]] = {
    "occurred_at": _csv_time,
    "amount": _decimal_comma,
    "margin": _decimal_comma,
    "currency": str.upper,
    "type": lambda value: value.lower().replace(" ", "_").replace("-", "_"),
}


def _csv_record(columns: list[str | None], cells: list[str]) -> dict[str, Any]:
    """Non-empty cells under their canonical names; an order's category becomes its one item."""
    data: dict[str, Any] = {}
    for name, cell in zip(columns, cells, strict=False):  # a short row leaves its last cells empty
        if name and (value := cell.strip()):
            data[name] = _CELL_RULES.get(name, str)(value)
    if data.get("type", DEFAULT_TYPE) in ("order_completed", "order_refunded") and "category" in data:
        data["items"] = [{"category": data.pop("category")}]
    return data


def _delimiter(header: str) -> str:
    """Comma unless the header has more semicolons or tabs, as European spreadsheets export."""
    return max(",;\t", key=header.count)


async def parse_csv(chunks: AsyncIterator[bytes]) -> AsyncIterator[ImportRow | RejectedRow]:
    """A header row, then one event per row; column names are matched loosely and extra ones kept.

    Each physical line is one row: a quoted field with an embedded newline is not supported, and such a
    row is rejected (unterminated quote) rather than joined with the next line.
    Raises ImportFormatError before any row when the header is absent or lacks a required column.
    """
    lines = _text_lines(chunks)
    first = await anext(lines, None)
    header = first[1] if first else None
    if not isinstance(header, str):
        raise ImportFormatError("the file has no readable header row")
    delimiter = _delimiter(header)
    columns = _csv_columns(next(csv.reader([header], delimiter=delimiter)))
    async for number, text in lines:
        if isinstance(text, RejectedRow):
            yield text
            continue
        try:
            cells = next(csv.reader([text], delimiter=delimiter, strict=True))
        except csv.Error as exc:
            yield _reject(number, f"not a valid CSV row: {exc}")
            continue
        if len(cells) > len(columns):
            yield _reject(number, f"row has {len(cells)} cells but the header names {len(columns)}")
            continue
        yield _validated(number, _csv_record(columns, cells))
