"""Loading order history from a file: a summary of what was taken, and re-uploads that change nothing."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from cartera.stack import Stack
from tests.e2e.helpers import settled_customer, unique, wait_for_customer

Keys = dict[str, str]


@dataclass
class History:
    """A generated file and what a correct import must make of it."""

    lines: list[str] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)
    orders: dict[str, list[Decimal]] = field(default_factory=lambda: defaultdict(list))

    @property
    def body(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()

    @property
    def accepted(self) -> int:
        return sum(len(amounts) for amounts in self.orders.values())


def history(rows: int = 300, customers: int = 30, bad_every: int = 50) -> tuple[list[str], list[dict[str, Any]]]:
    """Orders spread over customers, every `bad_every`-th one broken in one of a few ways."""
    rng = random.Random(7)
    ids = [unique("imp") for _ in range(customers)]
    faults: list[dict[str, Any]] = [{"amount": "-3.00"}, {"occurred_at": "last tuesday"}, {"amount": "lots"}]
    out = []
    for n in range(rows):
        row = {
            "customer_id": ids[n % customers],
            "occurred_at": f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}T10:{n % 60:02d}:00+00:00",
            "order_id": f"ord-{n}",
            "amount": f"{rng.randint(100, 99_999) / 100:.2f}",
            "currency": "EUR",
        }
        if n % bad_every == bad_every - 1:
            row |= faults[(n // bad_every) % len(faults)]
        out.append(row)
    return ids, out


def as_csv() -> History:
    _, rows = history()
    made = History(lines=["Customer ID,Order Date,Invoice,Total,Currency"])
    for row in rows:
        made.lines.append(",".join(row[k] for k in ("customer_id", "occurred_at", "order_id", "amount", "currency")))
        _expect(made, row, line=len(made.lines))
    return made


def as_ndjson() -> History:
    _, rows = history()
    made = History()
    for row in rows:
        made.lines.append(json.dumps(row))
        _expect(made, row, line=len(made.lines))
    made.lines.append("{not json")
    made.bad_lines.append(len(made.lines))
    return made


def _expect(made: History, row: dict[str, Any], *, line: int) -> None:
    try:
        amount = Decimal(row["amount"])
        valid = amount >= 0 and row["occurred_at"][0].isdigit()
    except ArithmeticError:
        valid = False
    if valid:
        made.orders[row["customer_id"]].append(amount)
    else:
        made.bad_lines.append(line)


def upload(stack: Stack, key: str, body: bytes, content_type: str, **params: str) -> httpx.Response:
    return httpx.post(
        f"{stack.services['ingest'].url}/v1/import",
        content=body,
        params=params,
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
        timeout=60,
    )


def assert_customers_match(stack: Stack, workspace: Keys, made: History) -> None:
    for customer_id, amounts in made.orders.items():
        customer = wait_for_customer(
            stack, workspace["read"], customer_id, lambda c, n=len(amounts): c["order_count"] == n
        )
        assert Decimal(customer["revenue"]) == sum(amounts), customer_id


def assert_summary(answer: httpx.Response, made: History, *, new: int) -> None:
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["accepted"], summary["rejected"], summary["new"]) == (made.accepted, len(made.bad_lines), new)
    assert [e["line"] for e in summary["errors"]] == made.bad_lines
    assert all(e["errors"][0]["field"] for e in summary["errors"])
    assert summary["errors_truncated"] is False


def test_a_csv_import_reports_its_rows_and_builds_the_customers(stack: Stack, workspace: Keys) -> None:
    made = as_csv()
    assert len(made.bad_lines) == 6
    assert_summary(upload(stack, workspace["write"], made.body, "text/csv"), made, new=made.accepted)
    assert_customers_match(stack, workspace, made)


def test_uploading_the_same_csv_again_changes_nothing(stack: Stack, workspace: Keys) -> None:
    made = as_csv()
    assert_summary(upload(stack, workspace["write"], made.body, "text/csv; charset=utf-8"), made, new=made.accepted)
    assert_summary(upload(stack, workspace["write"], made.body, "text/csv"), made, new=0)
    for customer_id, amounts in made.orders.items():
        customer = settled_customer(stack, workspace, customer_id)
        assert (customer["order_count"], Decimal(customer["revenue"])) == (len(amounts), sum(amounts))


def test_an_ndjson_import_reports_its_lines_and_is_idempotent(stack: Stack, workspace: Keys) -> None:
    made = as_ndjson()
    assert_summary(upload(stack, workspace["write"], made.body, "application/x-ndjson"), made, new=made.accepted)
    assert_customers_match(stack, workspace, made)
    assert_summary(upload(stack, workspace["write"], made.body, "application/x-ndjson"), made, new=0)


def test_the_format_parameter_overrides_a_generic_content_type(stack: Stack, workspace: Keys) -> None:
    customer_id = unique("imp")
    body = f"customer_id,occurred_at,amount\n{customer_id},2025-06-01,12.50\n".encode()
    answer = upload(stack, workspace["write"], body, "text/plain", format="csv")
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
    customer = wait_for_customer(stack, workspace["read"], customer_id, lambda c: c["order_count"] == 1)
    assert Decimal(customer["revenue"]) == Decimal("12.50")


def test_an_unsupported_content_type_is_refused(stack: Stack, workspace: Keys) -> None:
    answer = upload(stack, workspace["write"], b"<orders/>", "application/xml")
    assert answer.status_code == 415


def test_a_csv_without_the_amount_column_is_unprocessable(stack: Stack, workspace: Keys) -> None:
    customer_id = unique("imp")
    body = f"customer_id,occurred_at,order_id\n{customer_id},2025-06-01,o-1\n".encode()
    answer = upload(stack, workspace["write"], body, "text/csv")
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["field"] == "header"
    assert "amount" in problem["problem"]
    assert settled_customer(stack, workspace, customer_id)["order_count"] == 0


def test_an_import_needs_a_write_key(stack: Stack, workspace: Keys) -> None:
    body = b"customer_id,occurred_at,amount\nx,2025-06-01,1\n"
    assert upload(stack, workspace["read"], body, "text/csv").status_code == 403
    assert httpx.post(f"{stack.services['ingest'].url}/v1/import", content=body).status_code == 401
