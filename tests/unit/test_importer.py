"""The bulk-import parsers on plain bytes: streaming edges, CSV leniency, and idempotent ids."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ingest import importer
from ingest.importer import ImportFormatError, ImportRow, RejectedRow, parse_csv, parse_ndjson, sniff_format

Parser = Callable[[AsyncIterator[bytes]], AsyncIterator[ImportRow | RejectedRow]]


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _parse(parser: Parser, data: bytes, size: int = 4096) -> list[ImportRow | RejectedRow]:
    return [row async for row in parser(_chunks(data, size))]


def _events(rows: list[ImportRow | RejectedRow]) -> list[Any]:
    assert all(isinstance(row, ImportRow) for row in rows), rows
    return [row.event for row in rows if isinstance(row, ImportRow)]


def _rejected(rows: list[ImportRow | RejectedRow]) -> dict[int, list[str]]:
    return {row.line: [e["field"] for e in row.errors] for row in rows if isinstance(row, RejectedRow)}


NDJSON = (
    '{"customer_id":"c1","order_id":"A1","amount":"42.50","occurred_at":"2024-03-01T10:00:00+01:00"}\n'
    '{"type":"interaction","customer_id":"c1","channel":"call","occurred_at":"2024-03-02T09:00:00Z","agent":"José"}\n'
    '{"customer_id":"c2","order_id":"A2","amount":19.9,"currency":"USD","occurred_at":"2024-03-03T00:00:00Z"}\n'
).encode()

CSV = (
    "Customer,Order Date,Invoice-ID,Total,currency,category,Sales Rep,note\n"
    'c1,2024-03-01,INV-1,"42,50",eur,shoes,Ana,\n'
    "c2,2024-03-02T10:30:00,INV-2,19.90,USD,,,€ promo\n"
).encode()


# -- streaming edges -------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("parser,data", [(parse_ndjson, NDJSON), (parse_csv, CSV)])
async def test_one_byte_chunks_parse_like_one_chunk(parser: Parser, data: bytes) -> None:
    whole = await _parse(parser, data, size=len(data))
    assert await _parse(parser, data, size=1) == whole
    assert len(_events(whole)) == data.count(b"\n") - (parser is parse_csv)


@pytest.mark.asyncio
async def test_crlf_bom_and_a_last_line_without_newline_are_read() -> None:
    data = b"\xef\xbb\xbf" + NDJSON.replace(b"\n", b"\r\n").rstrip(b"\r\n")
    events = _events(await _parse(parse_ndjson, data, size=7))
    assert [e.customer_id for e in events] == ["c1", "c1", "c2"]
    assert events[2].currency == "USD"

    csv_rows = await _parse(parse_csv, b"\xef\xbb\xbf" + CSV.replace(b"\n", b"\r\n").rstrip(b"\r\n"), size=5)
    assert [e.order_id for e in _events(csv_rows)] == ["INV-1", "INV-2"]


@pytest.mark.asyncio
async def test_blank_lines_are_skipped_but_still_counted() -> None:
    good = b'{"customer_id":"c1","order_id":"A1","amount":1,"occurred_at":"2024-03-01T00:00:00Z"}'
    rows = await _parse(parse_ndjson, b"\n" + good + b"\n  \r\n\n{broken\n" + good + b"\n\n")
    assert [row.line for row in rows] == [2, 5, 6]
    assert isinstance(rows[1], RejectedRow)


@pytest.mark.asyncio
async def test_invalid_utf8_rejects_only_its_line() -> None:
    good = b'{"customer_id":"c1","order_id":"A1","amount":1,"occurred_at":"2024-03-01T00:00:00Z"}\n'
    rows = await _parse(parse_ndjson, good + b'{"customer_id":"\xff"}\n' + good)
    assert _rejected(rows) == {2: ["body"]}
    assert isinstance(rows[1], RejectedRow) and "UTF-8" in rows[1].errors[0]["problem"]


@pytest.mark.asyncio
async def test_an_overlong_line_is_dropped_not_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "MAX_LINE_BYTES", 120)
    good = b'{"customer_id":"c1","order_id":"A1","amount":1,"occurred_at":"2024-03-01T00:00:00Z"}\n'
    rows = await _parse(parse_ndjson, good + b"x" * 1000 + b"\n" + good + b"y" * 1000, size=16)
    assert [row.line for row in rows] == [1, 2, 3, 4]
    assert _rejected(rows) == {2: ["body"], 4: ["body"]}


# -- NDJSON ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_broken_json_is_rejected_with_its_line_number() -> None:
    rows = await _parse(parse_ndjson, NDJSON + b'{"customer_id": "c3",\n[1, 2]\n"text"\n')
    assert _rejected(rows) == {4: ["body"], 5: ["body"], 6: ["body"]}
    problems = [row.errors[0]["problem"] for row in rows if isinstance(row, RejectedRow)]
    assert problems[0].startswith("not valid JSON: ")
    assert problems[1:] == ["expected a JSON object, got list", "expected a JSON object, got str"]


@pytest.mark.asyncio
async def test_a_missing_type_means_a_completed_order() -> None:
    event = _events(await _parse(parse_ndjson, NDJSON))[0]
    assert event.type == "order_completed"
    assert event.amount == Decimal("42.50")


@pytest.mark.asyncio
async def test_validation_errors_name_the_field() -> None:
    line = b'{"customer_id":"c1","order_id":"A1","amount":-5,"occurred_at":"2024-03-01T00:00:00Z"}\n'
    rows = await _parse(parse_ndjson, NDJSON + line + b'{"type":"nope","customer_id":"c1"}\n')
    assert _rejected(rows) == {4: ["amount"], 5: ["type"]}


@pytest.mark.asyncio
async def test_order_events_get_import_ids_and_other_types_keep_none() -> None:
    events = _events(await _parse(parse_ndjson, NDJSON))
    assert events[0].event_id == "import:order_completed:A1"
    assert events[1].event_id is None
    given = b'{"event_id":"mine","customer_id":"c1","order_id":"A9","amount":1,"occurred_at":"2024-03-01T00:00:00Z"}'
    assert _events(await _parse(parse_ndjson, given))[0].event_id == "mine"


@pytest.mark.asyncio
async def test_two_partial_refunds_of_one_order_stay_two_events() -> None:
    refund = '{{"type":"order_refunded","customer_id":"c1","order_id":"A1","amount":{},"occurred_at":"{}"}}\n'
    data = (refund.format(5, "2024-03-05T00:00:00Z") + refund.format(7, "2024-03-09T00:00:00Z")).encode()
    first, second = _events(await _parse(parse_ndjson, data))
    assert first.event_id.startswith("import:order_refunded:A1:")
    assert first.event_id != second.event_id
    assert [e.event_id for e in _events(await _parse(parse_ndjson, data))] == [first.event_id, second.event_id]


@pytest.mark.asyncio
async def test_ndjson_dates_need_an_offset_as_in_the_http_api() -> None:
    line = b'{"customer_id":"c1","order_id":"A1","amount":1,"occurred_at":"2024-03-01T10:00:00"}\n'
    assert _rejected(await _parse(parse_ndjson, line)) == {1: ["occurred_at"]}


# -- CSV -------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_csv_aliases_and_loose_headers_map_to_catalogue_fields() -> None:
    first, second = _events(await _parse(parse_csv, CSV))
    assert (first.type, first.customer_id, first.order_id) == ("order_completed", "c1", "INV-1")
    assert (first.amount, first.currency) == (Decimal("42.50"), "EUR")
    assert [item.category for item in first.items] == ["shoes"]
    assert first.model_extra == {"sales_rep": "Ana"}
    assert second.items == [] and second.model_extra == {"note": "€ promo"}


@pytest.mark.asyncio
async def test_csv_header_is_line_one_and_rejections_carry_physical_lines() -> None:
    data = b"customer_id,occurred_at,amount\nc1,2024-03-01,1\n\n,2024-03-01,2\nc3,yesterday,3\nc4,2024-03-01,-1\n"
    rows = await _parse(parse_csv, data)
    assert rows[0].line == 2 and isinstance(rows[0], ImportRow)
    assert _rejected(rows) == {4: ["customer_id"], 5: ["occurred_at"], 6: ["amount"]}


@pytest.mark.asyncio
async def test_csv_decimal_comma_is_read_only_when_there_is_no_dot() -> None:
    data = b"customer_id;occurred_at;amount;margin\nc1;2024-03-01;42,50;3,5\nc2;2024-03-01;1.234,50;\n"
    rows = await _parse(parse_csv, data)
    assert isinstance(rows[0], ImportRow)
    assert (rows[0].event.amount, rows[0].event.margin) == (Decimal("42.50"), 3.5)  # type: ignore[attr-defined]
    assert _rejected(rows) == {3: ["amount"]}


@pytest.mark.asyncio
async def test_csv_bare_dates_and_naive_times_are_utc_and_offsets_are_kept() -> None:
    data = b"customer_id,date,amount\nc1,2024-03-01,1\nc1,2024-03-01 10:30,1\nc1,2024-03-01T10:30:00+02:00,1\n"
    times = [e.occurred_at for e in _events(await _parse(parse_csv, data))]
    assert times[0] == datetime(2024, 3, 1, tzinfo=UTC)
    assert times[1] == datetime(2024, 3, 1, 10, 30, tzinfo=UTC)
    assert times[2] == datetime(2024, 3, 1, 8, 30, tzinfo=UTC) and times[2].utcoffset().total_seconds() == 7200


@pytest.mark.asyncio
async def test_derived_order_ids_are_stable_across_runs_and_formatting() -> None:
    data = b'customer,timestamp,revenue\nc1,2024-03-01,"42,50"\nc1,2024-03-02,42.50\n'
    runs = [[(e.order_id, e.event_id) for e in _events(await _parse(parse_csv, data, size))] for size in (1, 64)]
    assert runs[0] == runs[1]
    (order_id, event_id), (other_id, _) = runs[0]
    assert order_id.startswith("import:") and len(order_id) == len("import:") + 16
    assert event_id == f"import:order_completed:{order_id}" and other_id != order_id
    same = b"customer_id,occurred_at,amount\nc1,2024-03-01T00:00:00Z,42.5\n"
    assert _events(await _parse(parse_csv, same))[0].order_id == order_id


@pytest.mark.asyncio
async def test_csv_missing_required_columns_raise_before_any_row() -> None:
    rows = parse_csv(_chunks(b"client,when,amount\nc1,2024-03-01,1\n", 4))
    with pytest.raises(ImportFormatError, match="customer_id") as caught:
        await anext(rows)
    assert "occurred_at" in str(caught.value) and "amount" not in str(caught.value).split("(")[0]


@pytest.mark.asyncio
@pytest.mark.parametrize("data", [b"", b"\n\n", b"customer_id,total,amount,date\n"])
async def test_csv_without_a_usable_header_raises(data: bytes) -> None:
    with pytest.raises(ImportFormatError):
        await _parse(parse_csv, data)


@pytest.mark.asyncio
async def test_csv_malformed_rows_are_rejected_alone() -> None:
    data = b'customer_id,occurred_at,amount\nc1,2024-03-01,1,extra\nc2,2024-03-01,"2\nc3,2024-03-01,3\n'
    rows = await _parse(parse_csv, data)
    assert _rejected(rows) == {2: ["body"], 3: ["body"]}
    assert rows[2].line == 4 and isinstance(rows[2], ImportRow)


@pytest.mark.asyncio
async def test_csv_type_column_allows_other_events_and_keeps_their_category() -> None:
    data = b"customer_id,occurred_at,amount,type,category,channel\nc1,2024-03-01,9,Cost Recorded,shipping,\n"
    data += b"c1,2024-03-02,,interaction,,call\n"
    cost, call = _events(await _parse(parse_csv, data))
    assert (cost.type, cost.category, cost.event_id) == ("cost_recorded", "shipping", None)
    assert (call.type, call.channel) == ("interaction", "call")


# -- format sniffing and volume --------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type,filename,expected",
    [
        ("application/x-ndjson", None, "ndjson"),
        ("application/jsonl; charset=utf-8", "x.csv", "ndjson"),
        ("application/json-seq", None, "ndjson"),
        ("text/csv", None, "csv"),
        ("application/octet-stream", "History.CSV", "csv"),
        (None, "C:\\exports\\orders.jsonl", "ndjson"),
        ("application/vnd.ms-excel", "orders.csv", "csv"),
        ("application/json", "orders.json", None),
        (None, None, None),
    ],
)
def test_sniff_format(content_type: str | None, filename: str | None, expected: str | None) -> None:
    assert sniff_format(content_type, filename) == expected


async def _generated(lines: int) -> AsyncIterator[bytes]:
    """Produces the upload lazily in ~64 KiB chunks, so only the parser could hold it whole."""
    batch: list[str] = []
    for i in range(1, lines + 1):
        if i % 1000 == 0:
            batch.append("{not json\n")
        else:
            batch.append(
                f'{{"customer_id":"c{i % 997}","order_id":"o{i}","amount":"{i % 500}.25",'
                f'"occurred_at":"2024-01-01T00:00:00Z","channel":"web"}}\n'
            )
        if len(batch) == 600:
            yield "".join(batch).encode()
            batch.clear()
    yield "".join(batch).encode()


@pytest.mark.asyncio
async def test_a_200k_line_upload_streams_through_in_bounded_memory() -> None:
    accepted = rejected = last_line = 0
    tracemalloc.start()
    try:
        async for row in parse_ndjson(_generated(200_000)):
            accepted += isinstance(row, ImportRow)
            rejected += isinstance(row, RejectedRow)
            last_line = row.line
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (accepted, rejected, last_line) == (199_800, 200, 200_000)
    assert peak < 8 * 1024 * 1024  # the upload is ~25 MB; only a chunk and a row should be alive at once
