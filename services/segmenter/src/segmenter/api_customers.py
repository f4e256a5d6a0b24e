"""Reading customers (read key): one customer in full, a filtered list with a cursor, and its CSV."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from cartera_common.access import Principal, require
from cartera_common.events.changes import Frequency, Responsiveness, Status, Tier
from segmenter import repository
from segmenter.repository import CustomerFilter

router = APIRouter(tags=["customers"])

# Nested rows arrive as JSON in the session's time zone; answers are always in UTC.
UtcDatetime = Annotated[datetime, AfterValidator(lambda d: d.astimezone(UTC))]
FilterText = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Consent(BaseModel):
    granted: bool
    at: UtcDatetime | None = Field(default=None, description="When the customer decided.")


class Profile(BaseModel):
    name: str | None
    email: str | None
    phone: str | None
    locale: str | None
    time_zone: str | None
    industry: str | None = Field(description="Industry or sector code (e.g. NACE 56.10).")
    company_size: str | None
    region: str | None
    country: str | None
    segment: str | None = Field(description="The `segment` trait.")
    traits: dict[str, Any]
    consent: dict[str, Consent] = Field(description="Per channel (email, sms, phone, post, all); absent: unknown.")


class StatusChange(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_status: Status = Field(alias="from")
    to_status: Status = Field(alias="to")
    at: UtcDatetime = Field(description="Event time of the transition.")
    reason: str
    policy_version: int = Field(description="The policy version that decided it.")


class Rfm(BaseModel):
    r: int | None = Field(description="Recency quintile, 5 = most recent.")
    f: int | None = Field(description="Frequency quintile, 5 = most orders.")
    m: int | None = Field(description="Monetary quintile, 5 = most revenue.")


class Classification(BaseModel):
    tier: Tier | None = Field(description="Volume tier relative to the portfolio; null until classified.")
    frequency: Frequency | None
    rfm: Rfm
    pareto: bool = Field(description="Among the fewest customers making 80 % of trailing-12-month revenue.")
    responsiveness: Responsiveness
    usual_gap_days: float | None = Field(description="The customer's usual gap between orders.")
    p_alive: float | None = Field(description="The scoring model's probability that the customer is still active.")
    p_alive_at: datetime | None
    favourite_category: str | None
    contacted_at: datetime | None
    responded_at: datetime | None
    classified_at: datetime | None


class Value(BaseModel):
    order_count: int
    revenue: Decimal
    revenue_12m: Decimal = Field(description="Revenue over the trailing twelve months.")
    margin: Decimal | None
    average_order: Decimal | None = Field(description="revenue / order_count; null without orders.")
    cost_to_serve: Decimal
    profit: Decimal = Field(description="margin (or revenue when no margin is known) minus cost to serve.")
    unprofitable: bool = Field(description="Costs more than it brings: profit below zero with a cost to serve.")


class Issue(BaseModel):
    kind: str = Field(description="complaint, delivery_failed, delivery_late, support_ticket or call_reason.")
    ref: str
    reason_code: str | None
    detail: str | None
    opened_at: UtcDatetime
    resolved_at: UtcDatetime | None


class Reasons(BaseModel):
    unhappy: bool = Field(description="Lapsed with an unresolved complaint or a recent delivery failure.")
    leave_reasons: list[str]
    issues: list[Issue] = Field(description="Newest first.")


class TimelineEvent(BaseModel):
    occurred_at: UtcDatetime
    event_id: str | None = Field(description="Null for completed orders, which are shown from the orders themselves.")
    type: str
    summary: dict[str, Any]


class Customer(BaseModel):
    customer_id: str
    workspace_id: str
    profile: Profile
    order_count: int
    revenue: Decimal
    first_order_at: datetime | None
    last_order_at: datetime | None
    first_seen_at: datetime
    last_event_at: datetime
    status: Status
    status_since: datetime | None
    status_reason: str | None
    status_due_at: datetime | None = Field(description="When time alone next moves the status, if ever.")
    policy_version: int
    status_history: list[StatusChange] = Field(description="The audit trail, most recently recorded first.")
    classification: Classification
    value: Value
    reasons: Reasons
    timeline: list[TimelineEvent] = Field(description="The latest 50 events, newest first.")


def _pick(model: type[BaseModel], row: Mapping[Any, Any], **extra: Any) -> dict[str, Any]:
    return {**{k: row[k] for k in model.model_fields if k in row}, **extra}


def _customer(row: Mapping[Any, Any]) -> Customer:
    rfm = Rfm(r=row["rfm_r"], f=row["rfm_f"], m=row["rfm_m"])
    return Customer.model_validate(
        _pick(
            Customer,
            row,
            profile=_pick(Profile, row),
            status_due_at=row["due_at"],
            classification=_pick(Classification, row, rfm=rfm),
            value=_pick(Value, row),
            reasons=_pick(Reasons, row),
        )
    )


@router.get(
    "/customers/{customer_id}",
    response_model=Customer,
    summary="One customer: profile, status and its history, classification, value, reasons, recent events",
)
async def get_customer(customer_id: str, request: Request, principal: Principal = Depends(require("read"))) -> Customer:
    async with repository.reading(request.app.state.runtime.engine) as conn:
        row = await repository.customer_detail(conn, workspace_id=principal.workspace_id, customer_id=customer_id)
    if row is None:
        raise HTTPException(404, f"no customer {customer_id!r} in this workspace")
    return _customer(row)


class CustomerItem(BaseModel):
    customer_id: str
    name: str | None
    email: str | None
    industry: str | None
    company_size: str | None
    region: str | None
    country: str | None
    segment: str | None
    status: Status
    status_since: datetime | None
    tier: Tier | None
    frequency: Frequency | None
    pareto: bool
    unhappy: bool
    responsiveness: Responsiveness
    order_count: int
    revenue: Decimal
    revenue_12m: Decimal
    profit: Decimal
    unprofitable: bool
    first_order_at: datetime | None
    last_order_at: datetime | None


class CustomerPage(BaseModel):
    items: list[CustomerItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


def customer_filter(
    status: Annotated[list[Status] | None, Query(description="Lifecycle status; repeat for any of several.")] = None,
    tier: Annotated[list[Tier] | None, Query(description="Volume tier; repeatable.")] = None,
    frequency: Annotated[list[Frequency] | None, Query(description="Frequency class; repeatable.")] = None,
    responsiveness: Annotated[list[Responsiveness] | None, Query(description="Repeatable.")] = None,
    industry: Annotated[
        list[FilterText] | None,
        Query(description="Industry or sector code prefix, case-insensitive: 56 matches 56.10; repeatable."),
    ] = None,
    segment: Annotated[list[FilterText] | None, Query(description="Exact segment; repeatable.")] = None,
    region: Annotated[list[FilterText] | None, Query(description="Exact region; repeatable.")] = None,
    pareto: Annotated[bool | None, Query(description="Only Pareto customers (true) or only the rest.")] = None,
    unhappy: Annotated[bool | None, Query(description="Only those who left unhappy (true) or the rest.")] = None,
    unprofitable: Annotated[bool | None, Query(description="Only those costing more than they bring.")] = None,
) -> CustomerFilter:
    """Values of one field are alternatives (OR); different fields must all match (AND)."""
    return CustomerFilter(
        status=tuple(status or ()),
        tier=tuple(tier or ()),
        frequency=tuple(frequency or ()),
        responsiveness=tuple(responsiveness or ()),
        industry=tuple(industry or ()),
        segment=tuple(segment or ()),
        region=tuple(region or ()),
        pareto=pareto,
        unhappy=unhappy,
        unprofitable=unprofitable,
    )


_CURSOR_PREFIX = "c1:"


def encode_cursor(customer_id: str) -> str:
    return base64.urlsafe_b64encode((_CURSOR_PREFIX + customer_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The customer id a cursor resumes after; 422 for anything this API did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not raw.startswith(_CURSOR_PREFIX) or "\x00" in raw:
        raise HTTPException(422, [{"field": "cursor", "problem": "not a cursor returned by this API"}])
    return raw[len(_CURSOR_PREFIX) :]


@router.get(
    "/customers",
    response_model=CustomerPage,
    summary="Customers matching filters, a page at a time",
    description=(
        "Filters combine with AND; repeating one (`status=lapsed&status=lost`) matches any of its values. "
        "Pages are in customer_id order: pass the answer's `next_cursor` as `cursor` until it is null. "
        "`GET /customers.csv` with the same filters exports the whole list as CSV."
    ),
)
async def list_customers(
    request: Request,
    principal: Principal = Depends(require("read")),
    filters: CustomerFilter = Depends(customer_filter),
    cursor: Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
) -> CustomerPage:
    after = decode_cursor(cursor) if cursor is not None else None
    async with repository.reading(request.app.state.runtime.engine) as conn:
        rows = await repository.list_customers(
            conn, workspace_id=principal.workspace_id, filters=filters, after=after, limit=limit + 1
        )
    items = [CustomerItem.model_validate(dict(r)) for r in rows[:limit]]
    more = len(rows) > limit
    return CustomerPage(items=items, next_cursor=encode_cursor(items[-1].customer_id) if more else None)


_CSV_FIELDS = list(CustomerItem.model_fields)
_TEXT_FIELDS = {"customer_id", "name", "email", "industry", "company_size", "region", "country", "segment"}


def _csv_cell(field: str, value: Any) -> str:
    """Cells read like the JSON: empty for null, true/false, UTC timestamps ending in Z."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    text = str(value)
    # A text cell starting like a formula would run in a spreadsheet (CSV injection); quote it.
    if field in _TEXT_FIELDS and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


async def _csv_lines(request: Request, workspace_id: str, filters: CustomerFilter) -> AsyncIterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_CSV_FIELDS)
    engine = request.app.state.runtime.engine
    async for rows in repository.iter_customers(engine, workspace_id=workspace_id, filters=filters):
        # Straight from the rows: a pydantic model per row would triple the cost of a large export.
        writer.writerows([_csv_cell(f, row[f]) for f in _CSV_FIELDS] for row in rows)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    if out.tell():  # nothing matched: the header alone
        yield out.getvalue()


@router.get(
    "/customers.csv",
    response_class=StreamingResponse,
    summary="The same filtered list as CSV, streamed",
    description=(
        "Takes the filters of `GET /customers` and streams every matching customer, in customer_id order, "
        "one row each with the columns of a `/customers` item (header row first; empty cell for null, "
        "true/false for flags). Text cells that start with = + - @ are prefixed with ' so spreadsheets "
        "do not run them as formulas."
    ),
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV, UTF-8"}},
)
async def export_customers(
    request: Request,
    principal: Principal = Depends(require("read")),
    filters: CustomerFilter = Depends(customer_filter),
) -> StreamingResponse:
    return StreamingResponse(
        _csv_lines(request, principal.workspace_id, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )
