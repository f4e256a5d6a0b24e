"""The win-back engine as a new user meets it: real processes, a real broker, a real SMTP sink.

A customer whose last order is long past lapses in the segmenter; campaigns hears it on
`customer-changes`, enrols them, and the first message lands in the SMTP sink. An order stops
the sequence; the unsubscribe link in the email works. Then the campaigns process is killed at
random moments while it sends to hundreds of customers, and no one gets a message twice.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import sync_playwright

from campaigns.domain.machine import in_control_group
from campaigns.domain.sequences import READY_MADE
from campaigns.sink import list_mail, read_mail
from cartera.stack import ServiceProcess, Stack
from tests.e2e.helpers import unique, wait_for_customer, wait_for_status

CHROMIUM = "/usr/bin/chromium"  # Debian's package; playwright drives it, it downloads no browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """The SMTP sink `make run` starts, as its own process."""
    directory, port = tmp_path_factory.mktemp("mail"), free_port()
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "campaigns.sink", "--dir", str(directory), "--host", "127.0.0.1", "--port", str(port)]
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield directory, port
    proc.terminate()
    proc.wait(10)


def start_campaigns(stack: Stack, sink: tuple[Path | str, int], **env: str) -> ServiceProcess:
    directory, port = sink
    settings = {
        "CAMPAIGNS_SMTP_HOST": "127.0.0.1",
        "CAMPAIGNS_SMTP_PORT": str(port),
        "CAMPAIGNS_MAIL_DIR": str(directory),
        "CAMPAIGNS_SENDING_LEASE_S": "1",
        "CAMPAIGNS_SCHEDULER_INTERVAL_S": "0.2",
    }
    return stack.start("campaigns", **(settings | env))


@pytest.fixture(scope="module")
def campaigns(stack: Stack, sink: tuple[Path, int]) -> Iterator[ServiceProcess]:
    svc = start_campaigns(stack, sink)
    yield svc
    stack.services["campaigns"].stop()


def post(stack: Stack, key: str, events: list[dict[str, Any]] | dict[str, Any]) -> None:
    r = httpx.post(f"{stack.services['ingest'].url}/v1/events", auth=(key, ""), json=events, timeout=30)
    assert r.status_code == 202 and not r.json().get("errors"), r.text


def no_quiet_hours(campaigns: ServiceProcess, admin: str) -> None:
    """Tests run at any hour; the default quiet hours (21:00-09:00) would hold the first message till morning."""
    body = {"quiet_start": "00:00:00", "quiet_end": "00:00:00", "cap_messages": 2, "cap_days": 7}
    r = wait_for_status(
        lambda: httpx.put(f"{campaigns.url}/pacing", headers={"Authorization": f"Bearer {admin}"}, json=body),
        lambda s: s != 401,
    )
    assert r.status_code == 200, r.text


def wait_for(predicate: Any, timeout_s: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"never saw {what}")


def mail_to(directory: Path, address: str) -> list[Any]:
    return [m for m in list_mail(directory, limit=10_000) if address in m.to]


def treated(prefix: str) -> str:
    """A fresh customer id that no ready-made campaign puts in its control group: a control
    customer is sent nothing, by design, and a random id lands there one time in ten."""
    while True:
        cid = unique(prefix)
        if not any(in_control_group(c, cid) for c in READY_MADE.values()):
            return cid


def lapsed_with_link(
    stack: Stack, workspace: dict[str, str], sink: tuple[Path, int], campaigns: ServiceProcess, name: str
) -> tuple[str, str]:
    """A customer whose only order is long past, once their first email is in: (customer id, its unsubscribe link)."""
    cid, email = treated(name.lower()), f"{unique(name.lower())}@example.com"
    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    post(stack, workspace["write"], [
        {"type": "profile_updated", "customer_id": cid, "name": name, "email": email},
        {"type": "order_completed", "customer_id": cid, "occurred_at": long_ago, "order_id": f"{cid}-1", "amount": 20},
    ])  # fmt: skip
    [mail] = wait_for(lambda: mail_to(sink[0], email), what=f"mail to {email}")
    _, body = read_mail(sink[0], mail.id) or (None, "")
    found = next(word for word in body.split() if "/unsubscribe/" in word).strip("<>().,")
    return cid, campaigns.url + found[found.index("/unsubscribe/") :]  # the test's service runs on its own port


def test_a_lapsed_customer_gets_the_first_message_and_an_order_stops_the_sequence(
    stack: Stack, workspace: dict[str, str], campaigns: ServiceProcess, sink: tuple[Path, int]
) -> None:
    no_quiet_hours(campaigns, workspace["admin"])
    cid, email = treated("wb"), f"{unique('ana')}@example.com"
    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    trace_id = uuid.uuid4().hex
    r = httpx.post(
        f"{stack.services['ingest'].url}/v1/events",
        auth=(workspace["write"], ""),
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},  # the caller's own trace
        json=[
            {"type": "profile_updated", "customer_id": cid, "name": "Ana García", "email": email},
            {"type": "order_completed", "customer_id": cid, "occurred_at": long_ago, "order_id": f"{cid}-1", "amount": 40},
        ],
    )  # fmt: skip
    assert r.status_code == 202 and not r.json()["errors"], r.text

    [mail] = wait_for(lambda: mail_to(sink[0], email), what=f"mail to {email}")
    summary, body = read_mail(sink[0], mail.id) or (None, "")
    assert "Ana" in body and "/unsubscribe/" in body
    # The caller's trace went through ingest, the segmenter and campaigns into the email itself.
    headers = BytesHeaderParser(policy=policy.default).parsebytes((sink[0] / f"{mail.id}.eml").read_bytes())
    assert str(headers["Traceparent"]).split("-")[1] == trace_id

    reader = {"Authorization": f"Bearer {workspace['read']}"}
    [e] = httpx.get(f"{campaigns.url}/enrolments", params={"customer_id": cid}, headers=reader).json()
    assert e["state"] == "active" and [m["state"] for m in e["messages"]] == ["sent"]
    listed = httpx.get(f"{campaigns.url}/mail", headers=reader).json()
    assert any(email in m["to"] for m in listed)

    post(
        stack, workspace["write"], {"type": "order_completed", "customer_id": cid, "order_id": f"{cid}-2", "amount": 55}
    )

    def ended() -> dict[str, Any] | None:
        [e] = httpx.get(f"{campaigns.url}/enrolments", params={"customer_id": cid}, headers=reader).json()
        return e if e["state"] == "ended" else None

    e = wait_for(ended, what="the enrolment to end")
    assert e["outcome"] == "reactivated" and e["credit"]["amount"] == 55
    report = httpx.get(f"{campaigns.url}/campaigns/{e['campaign_id']}/report", headers=reader).json()
    assert report["treatment"]["reactivated"] + report["control"]["reactivated"] >= 1


def test_the_unsubscribe_link_in_the_email_stops_the_sequence(
    stack: Stack, workspace: dict[str, str], campaigns: ServiceProcess, sink: tuple[Path, int]
) -> None:
    no_quiet_hours(campaigns, workspace["admin"])
    cid, link = lapsed_with_link(stack, workspace, sink, campaigns, "Bo")
    page = httpx.get(link)
    assert page.status_code == 200 and "<form" in page.text  # a scanner following the link unsubscribes no one
    done = httpx.post(link)
    assert done.status_code == 200 and "unsubscribed" in done.text

    reader = {"Authorization": f"Bearer {workspace['read']}"}
    [e] = httpx.get(f"{campaigns.url}/enrolments", params={"customer_id": cid}, headers=reader).json()
    assert (e["state"], e["outcome"]) == ("ended", "cancelled")
    assert httpx.post(link[:-3] + "xyz").status_code == 404
    # The segmenter hears it too: the customer's consent now says no to everything.
    customer = wait_for_customer(stack, workspace["read"], cid, lambda c: "all" in c["profile"]["consent"])
    assert customer["profile"]["consent"]["all"]["granted"] is False


class SlowSmtp:
    """A real SMTP server that takes its time over each message, so a kill lands mid-batch."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.02)
        message = BytesHeaderParser(policy=policy.default).parsebytes(envelope.original_content or b"")
        self.received[str(message.get("Message-ID", "")).strip("<>").split("@")[0]] += 1
        return "250 OK"


def test_killing_campaigns_while_it_sends_never_sends_a_message_twice(
    stack: Stack, workspace: dict[str, str], campaigns: ServiceProcess, sink: tuple[Path, int]
) -> None:
    no_quiet_hours(campaigns, workspace["admin"])
    smtp = SlowSmtp()
    port = free_port()
    controller = Controller(smtp, hostname="127.0.0.1", port=port)
    controller.start()
    env = {"CAMPAIGNS_SMTP_PORT": str(port), "CAMPAIGNS_DISPATCH_BATCH": "25", "CAMPAIGNS_SMTP_CONNECTIONS": "1"}
    stack.services["campaigns"].stop()
    svc = start_campaigns(stack, ("", 0), **env)
    try:
        batch, customers = unique("kill"), 300
        long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
        events: list[dict[str, Any]] = []
        for i in range(customers):
            cid = f"{batch}-{i}"
            events += [
                {"type": "profile_updated", "customer_id": cid, "name": f"Customer {i}", "email": f"{cid}@example.com"},
                {"type": "order_completed", "customer_id": cid, "occurred_at": long_ago, "order_id": f"{cid}-1",
                 "amount": 30},
            ]  # fmt: skip
        post(stack, workspace["write"], events)

        wait_for(lambda: sum(smtp.received.values()) > 0, what="the first message")
        rng = random.Random(11)
        kills = 0
        while kills < 6 and _unsettled(stack, batch):
            time.sleep(rng.uniform(0.1, 0.8))  # killed at a random point of a claim, a send or a settle
            svc.kill()
            kills += 1
            svc = start_campaigns(stack, ("", 0), **env)
        settled = wait_for(lambda: _settled(stack, batch, customers), timeout_s=90, what="every message settled")
    finally:
        controller.stop()
        svc.stop()
        start_campaigns(stack, sink)  # the later tests get the usual service, on the sink

    assert kills >= 3, "the sending was over before the service could be killed mid-way"
    assert smtp.received and max(smtp.received.values()) == 1, "a message was delivered twice"
    sent, in_doubt = set(settled.get("sent", [])), set(settled.get("in_doubt", []))
    delivered = set(smtp.received)
    assert sent <= delivered  # every message recorded as sent arrived, once
    assert delivered <= sent | in_doubt  # nothing arrived that is not on record
    assert len(sent) + len(in_doubt) == customers - _control_count(stack, batch)


def _rows(stack: Stack, sql: str, **params: Any) -> list[Any]:
    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(stack.database_url)
        try:
            return list(await conn.fetch(sql, *params.values()))
        finally:
            await conn.close()

    return asyncio.run(run())


def _unsettled(stack: Stack, batch: str) -> int:
    rows = _rows(
        stack,
        "SELECT count(*) AS n FROM campaigns.message WHERE customer_id LIKE $1 AND state NOT IN ('sent', 'in_doubt')",
        like=f"{batch}-%",
    )
    return int(rows[0]["n"])


def _settled(stack: Stack, batch: str, customers: int) -> dict[str, list[str]] | None:
    rows = _rows(stack, "SELECT message_id, state FROM campaigns.message WHERE customer_id LIKE $1", like=f"{batch}-%")
    states = {r["state"] for r in rows}
    expected = customers - _control_count(stack, batch)
    if len(rows) < expected or states - {"sent", "in_doubt"}:
        return None
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["state"], []).append(r["message_id"])
    return out


def _control_count(stack: Stack, batch: str) -> int:
    rows = _rows(
        stack,
        "SELECT count(*) AS n FROM campaigns.enrolment WHERE customer_id LIKE $1 AND control",
        like=f"{batch}-%",
    )
    return int(rows[0]["n"])


def test_campaigns_and_templates_are_managed_over_the_api_with_clear_errors(
    stack: Stack, workspace: dict[str, str], campaigns: ServiceProcess
) -> None:
    admin = {"Authorization": f"Bearer {workspace['admin']}"}
    reader = {"Authorization": f"Bearer {workspace['read']}"}
    url = stack.services["campaigns"].url  # the running one: another test may have restarted it
    listed = wait_for_status(lambda: httpx.get(f"{url}/campaigns", headers=reader), lambda s: s == 200).json()
    assert {c["campaign"]["id"] for c in listed} >= {"winback-standard", "winback-high-value", "nurture"}
    assert all(c["enabled"] and c["ready_made"] for c in listed)

    broken = httpx.put(
        f"{url}/templates/spring", headers=admin, json={"subject": "Hi", "text": "Hello {{ frist_name }"}
    )
    assert broken.status_code == 422 and "line 1" in broken.text
    unknown = httpx.put(
        f"{url}/templates/spring", headers=admin, json={"subject": "Hi", "text": "Hello {{ frist_name }}"}
    )
    assert unknown.status_code == 422 and "frist_name" in unknown.text
    ok = httpx.put(
        f"{url}/templates/spring", headers=admin, json={"subject": "Spring, {{ first_name }}", "text": "New season."}
    )
    assert ok.status_code == 200, ok.text

    steps = [{"delay_days": 7 * i, "channel": "email", "template_id": t, "call_to_action": "Come back"}
             for i, t in enumerate(["spring", "standard.whats-new", "standard.ten-off", "standard.reconnect"])]  # fmt: skip
    steps[2]["offer"] = {"kind": "percent_off", "percent": 10}
    body = {"id": "spring", "name": "Spring win-back", "steps": steps, "priority": 50}
    missing = httpx.put(
        f"{url}/campaigns/spring",
        headers=admin,
        json={**body, "steps": [{**steps[0], "template_id": "nope"}] + steps[1:]},
    )
    assert missing.status_code == 422 and "steps[0]" in missing.text and "nope" in missing.text
    too_short = httpx.put(f"{url}/campaigns/spring", headers=admin, json={**body, "steps": steps[:2]})
    assert too_short.status_code == 422 and "steps" in too_short.text
    assert httpx.put(f"{url}/campaigns/spring", headers=reader, json=body).status_code == 403
    created = httpx.put(f"{url}/campaigns/spring", headers=admin, json=body)
    assert created.status_code == 200, created.text
    assert created.json()["ready_made"] is False and created.json()["version"] == 1

    off = httpx.post(f"{url}/campaigns/winback-light-touch/disable", headers=admin)
    assert off.status_code == 200 and off.json()["enabled"] is False and off.json()["customised"] is False
    on = httpx.post(f"{url}/campaigns/winback-light-touch/enable", headers=admin)
    assert on.json()["enabled"] is True
    report = httpx.get(f"{url}/campaigns/spring/report", headers=reader).json()
    assert report["enrolled"] == 0 and report["uplift"] is None and report["notes"]
    assert httpx.get(f"{url}/campaigns/nothing-here/report", headers=reader).status_code == 404
    too_far = httpx.get(f"{url}/campaigns/spring/report", params={"cycle": 18096789470}, headers=reader)
    assert too_far.status_code == 422 and "cycle" in too_far.text  # found by the fuzzer: it overflowed SQL's int
    assert httpx.get(f"{url}/messages", params={"state": "bogus"}, headers=reader).status_code == 422
    # Leave the shared workspace as it was: later lapses take the ready-made route again.
    assert httpx.post(f"{url}/campaigns/spring/disable", headers=admin).json()["enabled"] is False


def test_a_customer_unsubscribes_in_a_real_browser_from_the_link_in_the_email(
    stack: Stack, workspace: dict[str, str], sink: tuple[Path, int]
) -> None:
    campaigns = stack.services["campaigns"]  # the running one: another test may have restarted it
    no_quiet_hours(campaigns, workspace["admin"])
    cid, link = lapsed_with_link(stack, workspace, sink, campaigns, "Cy")

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium package"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless"])
        page = browser.new_page()
        page.goto(link)
        assert page.title() == "Unsubscribe"
        assert "no more messages" in page.inner_text("body")
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_load_state()
        assert page.inner_text("h1") == "You are unsubscribed"
        browser.close()

    reader = {"Authorization": f"Bearer {workspace['read']}"}
    [e] = httpx.get(f"{campaigns.url}/enrolments", params={"customer_id": cid}, headers=reader).json()
    assert (e["state"], e["outcome"]) == ("ended", "cancelled")
