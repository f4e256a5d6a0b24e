"""The `cartera` command, run as an operator runs it, against a running stack of its own.

Each command is the installed console script in a subprocess, told where the servers are through
the environment, exactly as documented; no test reads a clock to decide anything.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from cartera.embedded import free_port
from cartera.services import SERVICES
from cartera.stack import Servers, Stack
from cartera_common.events import Envelope
from cartera_common.topics import ALL_TOPICS, EVENTS, MAIN_TOPICS, dlq
from tests.e2e.helpers import settled_customer, unique, wait_for_customer, wait_for_status

SCRIPT = Path(sys.executable).parent / "cartera"


@pytest.fixture(scope="module")
def cli_stack(servers: Servers, workdir: Path) -> Iterator[Stack]:
    """Ingest, segmenter and scoring of a stack no other test module uses (campaigns joins for status)."""
    folder = workdir / "cli"
    folder.mkdir(exist_ok=True)
    with servers.running_stack(folder) as stack:
        stack.start("scoring")
        yield stack


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty CARTERA_HOME, so a `.cartera` of a `make run` beside the tests is never found."""
    return tmp_path


def cartera(
    stack: Stack, home: Path, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    settings = stack.env() | {"CARTERA_HOME": str(home)}
    settings |= {f"CARTERA_{s.name.upper()}_URL": f"http://127.0.0.1:{free_port()}" for s in SERVICES}  # not running
    settings |= {f"CARTERA_{name.upper()}_URL": svc.url for name, svc in stack.services.items()}
    settings |= {f"CARTERA_{role.upper()}_KEY": key for role, key in stack.keys.items()}
    result = subprocess.run(  # noqa: S603 - the project's own console script
        [str(SCRIPT), *args], env=settings | env, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def until(check: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    """Repeats a check until it returns something truthy; the deadline only bounds a hang."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.3)
    raise AssertionError(f"never saw {what}")


def post_events(stack: Stack, events: list[dict[str, Any]]) -> None:
    r = httpx.post(f"{stack.services['ingest'].url}/v1/events", auth=(stack.keys["write"], ""), json=events)
    assert r.status_code == 202 and not r.json()["errors"], r.text


def order(customer: str, n: int, amount: str, days_ago: int) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    return {"type": "order_completed", "customer_id": customer, "occurred_at": at.isoformat(),
            "order_id": f"{customer}-{n}", "amount": amount, "currency": "EUR"}  # fmt: skip


def keys_of(stack: Stack) -> dict[str, str]:
    return {"write": stack.keys["write"], "read": stack.keys["read"]}


# --- status ----------------------------------------------------------------------------------------------


def test_status_reports_a_running_stack_healthy(cli_stack: Stack, home: Path) -> None:
    if "campaigns" not in cli_stack.services:
        cli_stack.start("campaigns")
    customer = unique("status")
    post_events(cli_stack, [order(customer, 1, "12.00", 3)])
    wait_for_customer(cli_stack, cli_stack.keys["read"], customer, lambda c: c["order_count"] == 1)

    def settled() -> dict[str, Any] | None:
        done = cartera(cli_stack, home, "status", "--json")
        report: dict[str, Any] = json.loads(done.stdout)
        lag = {(r["group"], r["topic"]): r["lag"] for r in report["lag"]}
        return report if done.returncode == 0 and lag.get(("segmenter", EVENTS)) == 0 else None

    report = until(settled, "a healthy status with the segmenter caught up on events")
    assert report["healthy"] is True and report["problems"] == []
    assert all(s["live"] and s["ready"] for s in report["services"])
    assert [s["service"] for s in report["services"]] == [s.name for s in SERVICES]
    topics = {t["topic"]: t for t in report["topics"]}
    assert set(ALL_TOPICS) <= set(topics) and topics[EVENTS]["partitions"] == 4
    assert topics[EVENTS]["messages"] >= 1
    assert {d["topic"] for d in report["dead_letters"]} == {dlq(t) for t in MAIN_TOPICS}
    assert [o["schema"] for o in report["outbox"]] == [s.name for s in SERVICES]
    text = cartera(cli_stack, home, "status")
    assert text.returncode == 0 and text.stdout.rstrip().endswith("healthy")
    assert "Consumer lag" in text.stdout and "Outbox backlog" in text.stdout


def test_status_fails_when_a_service_cannot_be_reached(cli_stack: Stack, home: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = cartera(cli_stack, home, "status", CARTERA_SCORING_URL=nowhere)
    assert done.returncode == 1
    assert f"scoring: unreachable (ConnectError) at {nowhere}" in done.stdout
    assert "unhealthy" in done.stdout


def test_commands_fail_cleanly_when_the_database_or_broker_is_down(cli_stack: Stack, home: Path) -> None:
    no_db = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    done = cartera(cli_stack, home, "keys", "list", DATABASE_URL=no_db)
    assert done.returncode == 1 and done.stderr.startswith(f"cartera keys: cannot use PostgreSQL at {no_db}")
    done = cartera(cli_stack, home, "replay", "--since", "1h", DATABASE_URL=no_db)
    assert done.returncode == 1 and "cannot use PostgreSQL" in done.stderr
    no_broker = f"127.0.0.1:{free_port()}"
    done = cartera(cli_stack, home, "dlq", "list", KAFKA_BOOTSTRAP_SERVERS=no_broker)
    assert done.returncode == 1 and done.stderr.startswith(f"cartera dlq: cannot use the broker at {no_broker}")


# --- import ----------------------------------------------------------------------------------------------


def test_an_imported_file_becomes_customers_and_rejected_lines_are_named(
    cli_stack: Stack, home: Path, tmp_path: Path
) -> None:
    a, b = unique("imp"), unique("imp")
    lines = ["Customer ID,Order Date,Invoice,Total,Currency"]
    lines += [f"{a},2025-01-05,{a}-1,10.50,EUR", f"{a},2025-03-05,{a}-2,20,EUR", f"{b},2025-02-01,{b}-1,lots,EUR"]
    lines += [f'{b},2025-02-03T10:00:00,{b}-2,"7,5",EUR']
    path = tmp_path / "history.csv"
    path.write_text("\n".join(lines) + "\n")

    done = cartera(cli_stack, home, "import", str(path), "--progress")
    assert done.returncode == 1  # a line was rejected; the others are in
    assert "accepted 3 rows (3 new, 0 already imported), rejected 1" in done.stdout
    assert "  line 4: amount:" in done.stdout
    assert "importing history.csv" in done.stderr and "100%" in done.stderr
    read = cli_stack.keys["read"]
    assert wait_for_customer(cli_stack, read, a, lambda c: c["order_count"] == 2)["revenue"] == "30.5000"
    assert wait_for_customer(cli_stack, read, b, lambda c: c["order_count"] == 1)["revenue"] == "7.5000"

    again = cartera(cli_stack, home, "import", str(path), "--json")
    assert again.returncode == 1 and json.loads(again.stdout)["new"] == 0  # re-importing changes nothing

    clean = tmp_path / "more.ndjson"
    clean.write_text(json.dumps(order(b, 3, "5.00", 10)) + "\n")
    done = cartera(cli_stack, home, "import", str(clean))
    assert done.returncode == 0 and "accepted 1 rows (1 new" in done.stdout and done.stderr == ""
    assert wait_for_customer(cli_stack, read, b, lambda c: c["order_count"] == 2)


def test_importing_with_a_revoked_or_unknown_key_is_refused(cli_stack: Stack, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "one.ndjson"
    path.write_text(json.dumps(order(unique("imp"), 1, "1.00", 1)) + "\n")
    done = cartera(cli_stack, home, "import", str(path), "--key", "ck_w_nobody-at-all")
    assert done.returncode == 1 and "ingest refused the key" in done.stderr


# --- replay ----------------------------------------------------------------------------------------------


def events_held(stack: Stack, home: Path) -> int:
    report = json.loads(cartera(stack, home, "status", "--json").stdout)
    return int(next(t["messages"] for t in report["topics"] if t["topic"] == EVENTS))


def test_replay_republishes_the_intake_log_and_consumers_apply_nothing_twice(cli_stack: Stack, home: Path) -> None:
    customer = unique("replay")
    post_events(cli_stack, [order(customer, 1, "10.00", 20), order(customer, 2, "5.00", 10)])
    before = wait_for_customer(cli_stack, cli_stack.keys["read"], customer, lambda c: c["order_count"] == 2)
    held = events_held(cli_stack, home)

    dry = cartera(cli_stack, home, "replay", "--since", "1h", "--dry-run")
    assert dry.returncode == 0 and "would be republished" in dry.stdout
    done = cartera(cli_stack, home, "replay", "--since", "1h")  # this stack's whole intake log
    assert done.returncode == 0, done.stderr
    republished = int(done.stdout.split()[1])  # "republished N events to events …"
    assert republished >= 2 and "with their original ids" in done.stdout
    assert events_held(cli_stack, home) >= held + republished

    after = settled_customer(cli_stack, keys_of(cli_stack), customer)
    assert (after["order_count"], after["revenue"]) == (2, before["revenue"])
    assert cartera(cli_stack, home, "replay", "--since", "2999-01-01").returncode == 2


# --- dead letters ----------------------------------------------------------------------------------------


async def produce(stack: Stack, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def segmenter_letters(stack: Stack, home: Path, key: str) -> list[dict[str, Any]]:
    done = cartera(stack, home, "dlq", "list", "--topic", EVENTS, "--limit", "0", "--json")
    assert done.returncode == 0, done.stderr
    return [d for d in json.loads(done.stdout) if d["key"] == key and d["group"] == "segmenter"]


def test_a_dead_letter_is_listed_with_its_reason_and_a_retry_reaches_the_failing_consumer_again(
    cli_stack: Stack, home: Path
) -> None:
    customer = unique("poison")
    now = datetime.now(UTC)
    poison = Envelope(event_id=str(uuid.uuid4()), type="order_completed", workspace_id="default",
                      customer_id=customer, occurred_at=now, received_at=now,
                      payload={"order_id": "o-1", "amount": "not a number", "currency": "EUR"})  # fmt: skip
    asyncio.run(produce(cli_stack, EVENTS, poison.key.encode(), poison.to_bytes()))

    [first] = until(lambda: segmenter_letters(cli_stack, home, poison.key), "the segmenter's dead letter")
    assert first["topic"] == EVENTS and first["reason"].startswith("InvalidOperation")
    assert first["message"]["event_id"] == poison.event_id
    table = cartera(cli_stack, home, "dlq", "list")
    assert first["id"] in table.stdout and "InvalidOperation" in table.stdout

    done = cartera(cli_stack, home, "dlq", "retry", "--id", first["id"])
    assert done.returncode == 0 and "republished 1 message to events" in done.stdout
    assert "cleared 1 dead mark" in done.stderr
    # Its inbox no longer skips it: the segmenter applies it again, fails again, and says so again.
    letters = until(
        lambda: [d for d in segmenter_letters(cli_stack, home, poison.key) if d["id"] != first["id"]],
        "a second dead letter",
    )
    assert letters[0]["message"] == first["message"]

    unknown = cartera(cli_stack, home, "dlq", "retry", "--id", "segmenter:events:0:999999")
    assert unknown.returncode == 1 and "no dead letter with id segmenter:events:0:999999" in unknown.stderr
    assert cartera(cli_stack, home, "dlq", "list", "--topic", "nope").returncode == 1
    assert cartera(cli_stack, home, "dlq", "retry").returncode == 2


# --- keys --------------------------------------------------------------------------------------------------


def test_a_key_made_by_the_command_works_everywhere_until_the_command_revokes_it(cli_stack: Stack, home: Path) -> None:
    made = cartera(cli_stack, home, "keys", "create", "--role", "read", "--json")
    assert made.returncode == 0, made.stderr
    issued = json.loads(made.stdout)
    key, key_id = issued["key"], issued["id"]
    assert (issued["role"], issued["workspace_id"], key_id) == ("read", "default", key[:10])
    segmenter = cli_stack.services["segmenter"].url

    def read() -> httpx.Response:
        return httpx.get(f"{segmenter}/customers/nobody", auth=(key, ""))

    wait_for_status(read, lambda status: status == 404)  # known to the segmenter through `access`
    listed = json.loads(cartera(cli_stack, home, "keys", "list", "--json").stdout)
    assert any(k["prefix"] == key_id and k["revoked_at"] is None for k in listed)
    assert key not in json.dumps(listed)

    done = cartera(cli_stack, home, "keys", "revoke", key_id)
    assert done.returncode == 0 and done.stdout.strip() == f"revoked {key_id} in workspace default"
    wait_for_status(read, lambda status: status == 401)
    again = cartera(cli_stack, home, "keys", "revoke", key_id)
    assert again.returncode == 1 and f"no active key {key_id}" in again.stderr

    plain = cartera(cli_stack, home, "keys", "create", "--role", "write")
    assert plain.returncode == 0 and plain.stdout.startswith("ck_w_") and "shown once" in plain.stderr
    nowhere = cartera(cli_stack, home, "keys", "create", "--role", "write", "--workspace", "no-such-place")
    assert nowhere.returncode == 1 and "there is no workspace 'no-such-place'" in nowhere.stderr


# --- policy and refit --------------------------------------------------------------------------------------


def new_workspace_admin(stack: Stack) -> str:
    ws = "cli-" + uuid.uuid4().hex[:8]
    r = httpx.post(
        f"{stack.services['ingest'].url}/v1/workspaces",
        auth=(stack.keys["admin"], ""),
        json={"workspace_id": ws, "name": ws},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["admin_key"]["key"])


def test_the_policy_is_shown_changed_from_a_file_and_checked(cli_stack: Stack, home: Path, tmp_path: Path) -> None:
    admin = new_workspace_admin(cli_stack)

    def show() -> subprocess.CompletedProcess[str] | None:
        done = cartera(cli_stack, home, "policy", "show", "--key", admin)
        return done if done.returncode == 0 else None  # refused until the new key reaches the segmenter

    shown = until(show, "the new admin key accepted by the segmenter")
    assert "policy version 0, the built-in default" in shown.stderr
    policy = json.loads(shown.stdout)
    assert policy["suspension"]["mode"] == "adaptive"

    policy["suspension"] = {"mode": "fixed", "days": 365}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    done = cartera(cli_stack, home, "policy", "set", str(path), "--key", admin)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["suspension"]["days"] == 365 and "policy version 1" in done.stderr
    now = json.loads(cartera(cli_stack, home, "policy", "show", "--json", "--key", admin).stdout)
    assert now["version"] == 1 and now["policy"]["suspension"]["mode"] == "fixed"

    bad = cartera(cli_stack, home, "policy", "set", "-", "--key", admin, stdin='{"suspension": {"days": 0}}')
    assert bad.returncode == 1 and "segmenter answered 422: suspension.days" in bad.stderr
    reader = cartera(cli_stack, home, "policy", "show", "--key", cli_stack.keys["read"])
    assert reader.returncode == 1 and "segmenter refused" in reader.stderr


def test_refit_fits_the_admin_key_s_workspace(cli_stack: Stack, home: Path) -> None:
    customers = [unique("fit") for _ in range(6)]
    post_events(cli_stack, [order(c, n, f"{10 + n}.00", 30 * n + i) for i, c in enumerate(customers) for n in range(3)])

    def fitted() -> subprocess.CompletedProcess[str] | None:
        done = cartera(cli_stack, home, "refit", "--json")
        return done if done.returncode == 0 and json.loads(done.stdout)["customers"] >= len(customers) else None

    done = until(fitted, "a refit that includes the new customers")  # 409 until the orders reach scoring
    assert json.loads(done.stdout)["workspace_id"] == "default"
    text = cartera(cli_stack, home, "refit")
    assert text.returncode == 0 and text.stdout.startswith("refitted workspace default")
    other = cartera(cli_stack, home, "refit", "--workspace", "elsewhere")
    assert other.returncode == 1 and "belongs to workspace 'default', not 'elsewhere'" in other.stderr
