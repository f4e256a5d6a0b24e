"""The segmenter's read API over rows seeded straight into its tables, checked against hand-computed answers.

Each test seeds a fresh workspace to which no event is ever posted, so the running consumers never
touch the rows.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from cartera.stack import Stack
from cartera_common.settings import libpq_url

Keys = dict[str, str]
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# id: status, tier, frequency, pareto, unhappy, responsiveness, industry, segment, region, size,
#     revenue, revenue_12m, margin, cost_to_serve, leave_reasons
SEED: dict[str, tuple[Any, ...]] = {
    "a01": ("active", "very_high", "frequent", True, False, "responder", "56.10", "horeca", "north", "11-50", 5000, 4000, None, 0, []),
    "a02": ("active", "high", "habitual", True, False, "responder", "56.30", "horeca", "south", "1-10", 3000, 2500, 900, 100, []),
    "a03": ("new", "medium", "occasional", True, False, "unknown", "47.11", "retail", "north", "1-10", 800, 800, None, 0, []),
    "a04": ("lapsed", "high", "habitual", False, True, "responder", "56.10", "horeca", "north", "11-50", 2000, 600, None, 50, ["complaint", "complaint", "delivery_failed"]),
    "a05": ("lapsed", "low", "occasional", False, False, "non_responder", "47.11", "retail", "east", "1-10", 300, 100, 20, 90, ["price"]),
    "a06": ("lost", "medium", "occasional", False, True, "non_responder", "10.71", "bakery", "south", "51-250", 900, 0, None, 0, ["complaint"]),
    "a07": ("reactivated", "medium", "habitual", False, False, "responder", "56.10", "horeca", "east", "1-10", 1200, 700, None, 1500, []),
    "a08": ("prospect", None, None, False, False, "unknown", None, None, None, None, 0, 0, None, 0, []),
    "a09": ("potential", None, None, False, False, "unknown", "56", "horeca", "north", "1-10", 0, 0, None, 0, []),
    "a10": ("active", "low", "frequent", False, False, "responder", "47.19", "retail", "north", "1-10", 400, 300, None, 0, ["old_reason"]),
    "a11": ("lost", "low", "occasional", False, False, "unknown", "10.71", "bakery", "east", "1-10", 100, 0, None, 0, ["delivery_failed"]),
    "a12": ("active", "high", "frequent", True, False, "responder", "Restaurants", None, "south", "11-50", 1500, 1000, None, 0, []),
}  # fmt: skip
FIELDS: tuple[str, ...] = ("status", "tier", "frequency", "pareto", "unhappy", "responsiveness", "industry")
FIELDS += ("segment", "region", "company_size", "revenue", "revenue_12m", "margin", "cost_to_serve", "leave_reasons")

_INSERT = """
INSERT INTO segmenter.customer (workspace_id, customer_id, name, first_seen_at, last_event_at, order_count, status,
    tier, frequency, pareto, unhappy, responsiveness, industry, traits, region, company_size, revenue, revenue_12m,
    margin, cost_to_serve, leave_reasons)
VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, $15, $16, $17, $18, $19, $20)
"""


async def sql(stack: Stack, statement: str, rows: list[tuple[Any, ...]]) -> None:
    conn = await asyncpg.connect(libpq_url(stack.database_url))
    try:
        await conn.executemany(statement, rows)
    finally:
        await conn.close()


async def seed(stack: Stack, workspace_id: str, customers: dict[str, tuple[Any, ...]] = SEED) -> None:
    rows = []
    for n, (cid, values) in enumerate(customers.items()):
        v = dict(zip(FIELDS, values, strict=True))
        orders = 8 if v["revenue"] else 0
        traits = json.dumps({"segment": v["segment"]} if v["segment"] else {})
        rows.append(
            (workspace_id, cid, f"Name {cid}", T0 + timedelta(days=n), orders, v["status"], v["tier"],
             v["frequency"], v["pareto"], v["unhappy"], v["responsiveness"], v["industry"], traits, v["region"],
             v["company_size"], Decimal(v["revenue"]), Decimal(v["revenue_12m"]),
             None if v["margin"] is None else Decimal(v["margin"]), Decimal(v["cost_to_serve"]), v["leave_reasons"])
        )  # fmt: skip
    await sql(stack, _INSERT, rows)


async def get(stack: Stack, keys: Keys, path: str, **params: Any) -> httpx.Response:
    """GET on the segmenter, waiting first for the new read key to reach its key copy."""
    url = f"{stack.services['segmenter'].url}{path}"
    headers = {"Authorization": f"Bearer {keys['read']}"}
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient(timeout=30) as client:
        while True:
            r = await client.get(url, params=params, headers=headers)
            if r.status_code != 401 or time.monotonic() > deadline:
                return r
            await asyncio.sleep(0.2)


async def ids(stack: Stack, keys: Keys, **params: Any) -> list[str]:
    """Every customer id the list returns, walking all pages."""
    found: list[str] = []
    cursor = None
    while True:
        r = await get(stack, keys, "/customers", **params, **({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        found += [item["customer_id"] for item in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return found


async def test_each_filter_alone_and_combined_selects_exactly_the_matching_customers(
    stack: Stack, workspace: Keys
) -> None:
    await seed(stack, workspace["workspace_id"])
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({}, set(SEED)),
        ({"status": "lapsed"}, {"a04", "a05"}),
        ({"status": ["lapsed", "lost"]}, {"a04", "a05", "a06", "a11"}),
        ({"tier": "high"}, {"a02", "a04", "a12"}),
        ({"frequency": "occasional"}, {"a03", "a05", "a06", "a11"}),
        ({"pareto": "true"}, {"a01", "a02", "a03", "a12"}),
        ({"pareto": "false"}, set(SEED) - {"a01", "a02", "a03", "a12"}),
        ({"unhappy": "true"}, {"a04", "a06"}),
        ({"responsiveness": "non_responder"}, {"a05", "a06"}),
        ({"industry": "56"}, {"a01", "a02", "a04", "a07", "a09"}),
        ({"industry": "56.1"}, {"a01", "a04", "a07"}),
        ({"industry": ["56.3", "10"]}, {"a02", "a06", "a11"}),
        ({"industry": "rest"}, {"a12"}),
        ({"segment": "horeca"}, {"a01", "a02", "a04", "a07", "a09"}),
        ({"region": "north"}, {"a01", "a03", "a04", "a09", "a10"}),
        ({"unprofitable": "true"}, {"a05", "a07"}),
        ({"status": "active", "tier": "high"}, {"a02", "a12"}),
        ({"industry": "56", "region": "north", "status": "lapsed"}, {"a04"}),
        ({"pareto": "true", "region": "north"}, {"a01", "a03"}),
        ({"segment": "retail", "frequency": "frequent", "responsiveness": "responder"}, {"a10"}),
        ({"unhappy": "true", "status": "lost", "industry": "10.71"}, {"a06"}),
        ({"status": "active", "tier": "low", "region": "south"}, set()),
    ]
    for params, expected in cases:
        assert set(await ids(stack, workspace, **params)) == expected, params


async def test_the_cursor_walks_every_customer_exactly_once_in_id_order(stack: Stack, workspace: Keys) -> None:
    await seed(stack, workspace["workspace_id"])
    pages: list[list[str]] = []
    cursor = None
    while True:
        r = await get(stack, workspace, "/customers", limit=5, **({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        pages.append([i["customer_id"] for i in r.json()["items"]])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    walked = [cid for page in pages for cid in page]
    assert [len(p) for p in pages] == [5, 5, 2]
    assert sorted(walked) == sorted(SEED) and walked == sorted(walked)
    # An exact fit ends without an empty extra page, and a filter pages the same way.
    assert len(await ids(stack, workspace, status="active", limit=4)) == 4
    one_by_one = await ids(stack, workspace, status="active", limit=1)
    assert one_by_one == ["a01", "a02", "a10", "a12"]


async def test_the_csv_export_has_the_rows_of_the_list(stack: Stack, workspace: Keys) -> None:
    await seed(stack, workspace["workspace_id"])
    for params in ({}, {"industry": "56"}, {"status": "lost", "region": "nowhere"}):
        listed = await ids(stack, workspace, **params, limit=3)
        r = await get(stack, workspace, "/customers.csv", **params)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["customer_id"] for row in rows] == listed
    page = (await get(stack, workspace, "/customers", limit=1000)).json()["items"]
    exported = list(csv.DictReader(io.StringIO((await get(stack, workspace, "/customers.csv")).text)))
    assert list(exported[0]) == list(page[0])  # the same columns, in the same order
    a07 = next(row for row in exported if row["customer_id"] == "a07")
    assert (a07["status"], a07["tier"], a07["unprofitable"], Decimal(a07["profit"])) == (
        "reactivated",
        "medium",
        "true",
        Decimal(-300),
    )
    a08 = next(row for row in exported if row["customer_id"] == "a08")
    assert (a08["tier"], a08["industry"], a08["pareto"]) == ("", "", "false")


async def test_the_csv_export_defuses_cells_that_would_run_as_formulas(stack: Stack, workspace: Keys) -> None:
    await seed(stack, workspace["workspace_id"], {"=HYPERLINK(1)": SEED["a05"]})
    rows = list(csv.DictReader(io.StringIO((await get(stack, workspace, "/customers.csv")).text)))
    assert (rows[0]["customer_id"], rows[0]["profit"]) == ("'=HYPERLINK(1)", "-70.0000")  # numbers stay numbers


async def test_a_bad_filter_is_refused_naming_the_field(stack: Stack, workspace: Keys) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"status": "happy"}, "status"),
        ({"tier": "huge"}, "tier"),
        ({"frequency": "daily"}, "frequency"),
        ({"responsiveness": "maybe"}, "responsiveness"),
        ({"pareto": "perhaps"}, "pareto"),
        ({"unhappy": "2"}, "unhappy"),
        ({"industry": ""}, "industry"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ]
    for path in ("/customers", "/customers.csv"):
        for params, field in bad:
            if path.endswith(".csv") and field in ("limit", "cursor"):
                continue
            r = await get(stack, workspace, path, **params)
            assert r.status_code == 422, (path, params, r.text)
            problems = r.json()["detail"]
            assert any(p["field"].split(".")[0] == field and p["problem"] for p in problems), (params, problems)


async def test_another_workspace_never_shows(stack: Stack, workspace: Keys) -> None:
    theirs = "other-" + uuid.uuid4().hex[:8]
    await seed(stack, "default", {theirs: SEED["a01"], "a01-" + theirs: SEED["a04"]})
    empty_portfolio = (await get(stack, workspace, "/portfolio")).json()
    assert empty_portfolio["customers"] == 0
    assert [p["customers"] for p in empty_portfolio["concentration"]["curve"]] == [0]
    await seed(stack, workspace["workspace_id"])
    assert (await get(stack, workspace, f"/customers/{theirs}")).status_code == 404
    listed = await ids(stack, workspace)
    assert sorted(listed) == sorted(SEED)
    exported = (await get(stack, workspace, "/customers.csv")).text
    assert theirs not in exported
    portfolio = (await get(stack, workspace, "/portfolio")).json()
    assert portfolio["customers"] == len(SEED)
    assert Decimal(portfolio["revenue_12m"]) == 10000
    assert (await get(stack, workspace, "/pipeline")).json()["total"]["opportunities"] == 0


async def test_an_unknown_customer_is_not_found(stack: Stack, workspace: Keys) -> None:
    r = await get(stack, workspace, "/customers/nobody-" + uuid.uuid4().hex)
    assert r.status_code == 404
    assert "nobody-" in r.json()["detail"]


async def test_the_customer_shows_history_issues_and_timeline_newest_first(stack: Stack, workspace: Keys) -> None:
    ws = workspace["workspace_id"]
    await seed(stack, ws)
    # The history is the audit trail: listed newest recorded first, whatever event time each names
    # (an import records "lapsed" with a later `at` than the "active" a policy change records after it).
    transitions = [
        ("prospect", "new", T0, "first order", 1),
        ("new", "active", T0 + timedelta(days=40), "second order", 1),
        ("active", "lapsed", T0 + timedelta(days=300), "no order for 120 days", 2),
        ("lapsed", "active", T0 + timedelta(days=100), "policy changed", 3),
    ]
    await sql(
        stack,
        "INSERT INTO segmenter.status_change (workspace_id, customer_id, from_status, to_status, at, reason,"
        " policy_version) VALUES ($1, 'a04', $2, $3, $4, $5, $6)",
        [(ws, *t) for t in transitions],
    )
    await sql(
        stack,
        "INSERT INTO segmenter.customer_issue (workspace_id, customer_id, kind, ref, reason_code, opened_at,"
        " resolved_at) VALUES ($1, 'a04', $2, $3, $4, $5, $6)",
        [
            (ws, "complaint", "t-1", "late", T0 + timedelta(days=200), None),
            (ws, "delivery_failed", "o-9", None, T0 + timedelta(days=250), T0 + timedelta(days=251)),
        ],
    )
    await sql(
        stack,
        "INSERT INTO segmenter.timeline (workspace_id, customer_id, occurred_at, event_id, type, summary)"
        " VALUES ($1, 'a04', $2, $3, 'order_completed', $4::jsonb)",
        [(ws, T0 + timedelta(hours=n), f"e-{n:03d}", json.dumps({"amount": n})) for n in range(60)],
    )
    consent = {"email": {"granted": False, "at": "2026-03-01T10:00:00Z"}, "sms": {"granted": True, "at": None}}
    await sql(
        stack,
        "UPDATE segmenter.customer SET consent = $2::jsonb WHERE workspace_id = $1 AND customer_id = 'a04'",
        [(ws, json.dumps(consent))],
    )
    r = await get(stack, workspace, "/customers/a04")
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["profile"]["consent"] == consent
    assert [(h["from"], h["to"], h["policy_version"]) for h in c["status_history"]] == [
        ("lapsed", "active", 3),
        ("active", "lapsed", 2),
        ("new", "active", 1),
        ("prospect", "new", 1),
    ]
    assert c["status_history"][1]["reason"] == "no order for 120 days"
    assert datetime.fromisoformat(c["status_history"][1]["at"]) == T0 + timedelta(days=300)
    issues = c["reasons"]["issues"]
    assert [(i["kind"], i["ref"], i["reason_code"]) for i in issues] == [
        ("delivery_failed", "o-9", None),
        ("complaint", "t-1", "late"),
    ]
    assert datetime.fromisoformat(issues[0]["resolved_at"]) == T0 + timedelta(days=251)
    assert issues[1]["resolved_at"] is None
    assert c["reasons"]["unhappy"] is True
    assert c["reasons"]["leave_reasons"] == ["complaint", "complaint", "delivery_failed"]
    assert [e["event_id"] for e in c["timeline"]] == [f"e-{n:03d}" for n in range(59, 9, -1)]
    assert c["timeline"][0]["summary"] == {"amount": 59}


async def test_the_customer_shows_status_classification_and_value(stack: Stack, workspace: Keys) -> None:
    await seed(stack, workspace["workspace_id"])
    c = (await get(stack, workspace, "/customers/a04")).json()
    assert (c["customer_id"], c["workspace_id"], c["order_count"]) == ("a04", workspace["workspace_id"], 8)
    assert Decimal(c["revenue"]) == 2000
    assert datetime.fromisoformat(c["first_seen_at"]) == T0 + timedelta(days=3)
    assert c["profile"]["name"] == "Name a04" and c["profile"]["segment"] == "horeca"
    assert c["profile"]["industry"] == "56.10" and c["profile"]["consent"] == {}
    assert c["status"] == "lapsed"
    cl = c["classification"]
    assert (cl["tier"], cl["frequency"], cl["pareto"], cl["responsiveness"]) == ("high", "habitual", False, "responder")
    v = {k: (Decimal(x) if isinstance(x, str) else x) for k, x in c["value"].items()}
    assert v == {
        "order_count": 8,
        "revenue": 2000,
        "revenue_12m": 600,
        "margin": None,
        "average_order": 250,
        "cost_to_serve": 50,
        "profit": 1950,
        "unprofitable": False,
    }
    a05 = (await get(stack, workspace, "/customers/a05")).json()["value"]
    assert (Decimal(a05["profit"]), a05["unprofitable"]) == (Decimal(-70), True)  # margin, not revenue
    a08 = (await get(stack, workspace, "/customers/a08")).json()
    assert a08["value"]["average_order"] is None and a08["classification"]["tier"] is None
    assert a08["status_history"] == [] and a08["timeline"] == [] and a08["reasons"]["issues"] == []


def by_key(groups: list[dict[str, Any]]) -> dict[str | None, tuple[int, Decimal]]:
    return {g["key"]: (g["customers"], Decimal(g["revenue_12m"])) for g in groups}


async def test_the_portfolio_adds_up_to_the_seeded_customers(stack: Stack, workspace: Keys) -> None:
    await seed(stack, workspace["workspace_id"])
    r = await get(stack, workspace, "/portfolio")
    assert r.status_code == 200, r.text
    p = r.json()
    assert (p["customers"], Decimal(p["revenue"]), Decimal(p["revenue_12m"])) == (12, 15200, 10000)
    statuses = [(g["key"], g["customers"]) for g in p["by_status"]]
    assert statuses == [
        ("prospect", 1), ("potential", 1), ("new", 1), ("active", 4), ("lapsed", 2), ("lost", 2), ("reactivated", 1)
    ]  # fmt: skip
    active = p["by_status"][3]
    assert (Decimal(active["revenue"]), active["revenue_12m_share"], active["buying"]) == (9900, 0.78, 4)
    assert [(g["key"], g["customers"]) for g in p["by_tier"]] == [
        ("very_high", 1), ("high", 3), ("medium", 3), ("low", 3), (None, 2)
    ]  # fmt: skip
    assert [(g["key"], g["customers"]) for g in p["by_frequency"]] == [
        ("frequent", 3), ("habitual", 3), ("occasional", 4), (None, 2)
    ]  # fmt: skip
    regions = p["map"]["by_region"]
    assert [g["key"] for g in regions] == ["north", "south", "east", None]
    assert by_key(regions) == {"north": (5, 5700), "south": (3, 3500), "east": (3, 800), None: (1, 0)}
    industries = p["map"]["by_industry"]
    assert [g["key"] for g in industries] == ["56.10", "56.30", "Restaurants", "47.11", "47.19", "10.71", "56", None]
    top = industries[0]
    assert (top["customers"], top["buying"], top["pareto"], Decimal(top["revenue"])) == (3, 2, 1, 8200)
    assert by_key(p["map"]["by_company_size"]) == {
        "11-50": (3, 5600), "1-10": (7, 4400), "51-250": (1, 0), None: (1, 0)
    }  # fmt: skip


async def test_the_portfolio_shows_concentration_leaving_and_unprofitable(stack: Stack, workspace: Keys) -> None:
    await seed(stack, workspace["workspace_id"])
    p = (await get(stack, workspace, "/portfolio", points=4)).json()
    conc = p["concentration"]
    # Eight customers brought 10,000 over twelve months: 4,000, 2,500, 1,000, 800, 700, 600, 300, 100.
    assert (conc["customers"], Decimal(conc["revenue_12m"])) == (8, 10000)
    assert (conc["pareto_customers"], conc["pareto_customer_share"], conc["pareto_revenue_share"]) == (4, 0.5, 0.83)
    curve = [(pt["customers"], pt["customer_share"], Decimal(pt["revenue_12m"]), pt["revenue_share"]) for pt in conc["curve"]]  # fmt: skip
    assert curve == [(0, 0, 0, 0), (2, 0.25, 6500, 0.65), (4, 0.5, 8300, 0.83), (6, 0.75, 9600, 0.96), (8, 1, 10000, 1)]
    default = (await get(stack, workspace, "/portfolio")).json()["concentration"]["curve"]
    assert [pt["customers"] for pt in default] == list(range(9))  # 20 points over 8 customers: each rank once
    assert [pt["revenue_share"] for pt in default][1:4] == [0.4, 0.65, 0.75]

    leaving = p["leaving"]
    assert (leaving["lapsed"], leaving["lost"], leaving["unhappy_lapsed"], leaving["unhappy_lost"]) == (2, 2, 1, 1)
    assert [(x["reason"], x["customers"], x["lapsed"], x["lost"], x["unhappy"]) for x in leaving["reasons"]] == [
        ("complaint", 2, 1, 1, 2),
        ("delivery_failed", 2, 1, 1, 1),
        ("price", 1, 1, 0, 0),
    ]
    unprofitable = p["unprofitable"]
    assert (unprofitable["customers"], Decimal(unprofitable["loss"])) == (2, 370)
    assert [(x["customer_id"], Decimal(x["profit"])) for x in unprofitable["top"]] == [("a07", -300), ("a05", -70)]
    assert (await get(stack, workspace, "/portfolio", top=1)).json()["unprofitable"]["top"][0]["customer_id"] == "a07"


async def test_the_pipeline_weighs_open_opportunities_by_close_month(stack: Stack, workspace: Keys) -> None:
    ws = workspace["workspace_id"]
    opportunities = [
        ("o1", "open", 1000, 0.5, date(2026, 12, 15)),
        ("o2", "open", 3000, 0.2, date(2026, 12, 1)),
        ("o3", "open", 500, None, date(2027, 1, 10)),
        ("o4", "open", None, 0.9, date(2027, 1, 31)),
        ("o5", "open", 2000, 0.25, None),
        ("o6", "won", 9999, 1.0, date(2026, 12, 5)),
        ("o7", "lost", 5000, 0.5, None),
    ]
    await sql(
        stack,
        "INSERT INTO segmenter.opportunity (workspace_id, customer_id, opportunity_id, state, amount, probability,"
        " expected_close, updated_at) VALUES ($1, 'a01', $2, $3, $4, $5, $6, now())",
        [(ws, o, state, None if a is None else Decimal(a), p, d) for o, state, a, p, d in opportunities],
    )
    r = await get(stack, workspace, "/pipeline")
    assert r.status_code == 200, r.text

    def bucket(b: dict[str, Any]) -> tuple[Any, ...]:
        return b["opportunities"], Decimal(b["amount"]), Decimal(b["weighted_amount"]), b["without_probability"]

    body = r.json()
    assert [(m["month"], *bucket(m)) for m in body["months"]] == [
        ("2026-12", 2, 4000, 1100, 0),
        ("2027-01", 2, 500, 0, 1),
    ]
    assert bucket(body["unscheduled"]) == (1, 2000, 500, 0)
    assert bucket(body["total"]) == (5, 6500, 1600, 1)


async def test_a_customer_built_from_events_reads_back_whole(stack: Stack, workspace: Keys) -> None:
    """The one test that goes through ingest: what the handlers store must fit the read models."""
    cid = "events-" + uuid.uuid4().hex[:8]
    events = [
        {"type": "order_completed", "order_id": "o-1", "amount": 40, "occurred_at": "2026-05-01T10:00:00Z"},
        {"type": "complaint_opened", "complaint_id": "k-1", "reason_code": "cold", "occurred_at": "2026-05-02T10:00:00Z"},
        {"type": "consent_changed", "channel": "email", "granted": True, "occurred_at": "2026-05-03T10:00:00Z"},
        {"type": "cost_recorded", "amount": 50, "occurred_at": "2026-05-04T10:00:00Z"},
        {"type": "opportunity_opened", "opportunity_id": "op-1", "amount": 100, "probability": 0.3,
         "expected_close": "2026-06-20", "occurred_at": "2026-05-05T10:00:00Z"},
    ]  # fmt: skip
    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{stack.services['ingest'].url}/v1/events",
            auth=(workspace["write"], ""),
            json=[{**e, "customer_id": cid} for e in events],
        )
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 30
    while True:
        r = await get(stack, workspace, f"/customers/{cid}")
        if r.status_code == 200 and len(r.json()["timeline"]) == len(events) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert r.status_code == 200, r.text
    c = r.json()
    assert [e["type"] for e in c["timeline"]] == [e["type"] for e in reversed(events)]
    assert [(i["kind"], i["reason_code"]) for i in c["reasons"]["issues"]] == [("complaint", "cold")]
    assert c["profile"]["consent"]["email"]["granted"] is True
    assert (Decimal(c["value"]["profit"]), c["value"]["unprofitable"]) == (Decimal(-10), True)
    assert c["status_history"] and c["status_history"][0]["to"] == c["status"]
    listed = (await get(stack, workspace, "/customers")).json()["items"]
    assert [i["customer_id"] for i in listed] == [cid]
    pipeline = (await get(stack, workspace, "/pipeline")).json()
    assert [(m["month"], Decimal(m["weighted_amount"])) for m in pipeline["months"]] == [("2026-06", Decimal(30))]
