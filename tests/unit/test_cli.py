"""The `cartera` command line without servers: parsing, exit codes, and what each failure says.

HTTP goes to an httpx.MockTransport and the broker and database clients are replaced by fakes,
so no socket is opened; tests/e2e/test_cli.py runs the same commands against a real stack.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from sqlalchemy.exc import DBAPIError

from cartera.cli import main
from cartera.commands import clients
from cartera.commands.base import CommandError, UsageError
from cartera.commands.connection import (
    STATE_FILE,
    Connection,
    clear_running_state,
    redact,
    resolve,
    write_running_state,
)
from cartera.commands.dlq import DeadLetter
from cartera.commands.importing import Progress, describe
from cartera.commands.replay import parse_since
from cartera.commands.status import group_lag

COMMANDS = [
    ["up"],
    ["migrate"],
    ["status"],
    ["import"],
    ["replay"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "retry"],
    ["refit"],
    ["keys"],
    ["keys", "create"],
    ["keys", "revoke"],
    ["keys", "list"],
    ["policy"],
    ["policy", "show"],
    ["policy", "set"],
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting of the machine running the tests (nor a `.cartera` beside them) leaks in."""
    for name in list(os.environ):
        if name.startswith(("CARTERA_", "INGEST_", "SEGMENTER_", "SCORING_", "CAMPAIGNS_")) or name in (
            "DATABASE_URL",
            "KAFKA_BOOTSTRAP_SERVERS",
        ):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CARTERA_HOME", str(home))
    return home


Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def http(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Handler], list[httpx.Request]]]:
    """Routes the commands' HTTP to a handler; returns the requests it saw."""

    def install(handler: Handler) -> list[httpx.Request]:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            request.read()
            seen.append(request)
            return handler(request)

        monkeypatch.setattr(clients, "http_transport", httpx.MockTransport(record))
        monkeypatch.setattr(clients, "async_http_transport", httpx.MockTransport(record))
        return seen

    yield install


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("Connection refused", request=request)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def exits(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(stopped.value.code or 0), out, err


# --- parsing and exit codes ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_explains_itself(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = exits(capsys, *command, "--help")
    assert code == 0
    assert out.startswith(f"usage: cartera {' '.join(command)}")


def test_the_main_help_lists_the_commands_and_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = exits(capsys, "--help")
    assert code == 0
    for command in ("status", "import", "replay", "dlq", "refit", "keys", "policy", "up", "migrate"):
        assert f"\n    {command}" in out
    assert "exit codes:" in out
    assert "  0  done" in out and "  1  failed" in out and "  2  usage" in out
    assert "CARTERA_INGEST_URL" in out and "DATABASE_URL" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["launch"],
        ["replay"],
        ["keys", "create"],
        ["keys", "create", "--role", "owner"],
        ["keys", "revoke"],
        ["dlq"],
        ["dlq", "list", "--limit", "many"],
        ["import"],
        ["import", "a.csv", "--format", "xlsx"],
        ["policy", "set"],
    ],
    ids=lambda argv: " ".join(argv) or "nothing",
)
def test_a_malformed_command_line_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = exits(capsys, *argv)
    assert code == 2
    assert "usage: cartera" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["dlq", "retry"], "--id ID, --topic TOPIC or --all"),
        (["dlq", "list", "--limit", "-1"], "--limit"),
        (["replay", "--since", "last tuesday"], "neither an ISO 8601 moment nor an age"),
        (["replay", "--since", "2999-01-01T00:00:00Z"], "in the future"),
        (["import", "orders.xlsx"], "pass --format csv or --format ndjson"),
        (["refit", "--as-of", "soon"], "--as-of"),
        (["migrate"], "DATABASE_URL is not set"),
    ],
)
def test_an_incomplete_request_is_a_usage_error_before_any_server_is_asked(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert says in err and err.startswith(f"cartera {argv[0]}: ")


# --- where the servers are -------------------------------------------------------------------------------


def test_without_settings_the_documented_defaults_apply(clean_environment: Path) -> None:
    conn = resolve()
    assert conn.database_url == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert conn.bootstrap == "127.0.0.1:9092"
    assert conn.services == {f"{n}": f"http://127.0.0.1:{p}" for n, p in zip(
        ("ingest", "segmenter", "scoring", "campaigns"), (8001, 8002, 8003, 8004), strict=True)}  # fmt: skip
    assert conn.origin == "defaults" and not conn.keys


def test_a_running_cartera_up_is_found_through_its_state_file(clean_environment: Path) -> None:
    env = {
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:55432/postgres",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9999",
    }
    path = write_running_state(clean_environment, env | {"SCORING_PORT": "9003", "CARTERA_HOST": "0.0.0.0"})
    assert path.stat().st_mode & 0o777 == 0o600
    (clean_environment / "keys.env").write_text(
        "export CARTERA_ADMIN_KEY=ck_a_saved\nexport CARTERA_READ_KEY=ck_r_saved\n"
    )
    conn = resolve()
    assert (conn.database_url, conn.bootstrap) == (env["DATABASE_URL"], "127.0.0.1:9999")
    assert conn.url("scoring") == "http://127.0.0.1:9003" and conn.url("ingest") == "http://127.0.0.1:8001"
    assert conn.key("admin") == "ck_a_saved" and conn.key("write") is None
    assert conn.origin.startswith("cartera up")
    clear_running_state(clean_environment)
    assert resolve().bootstrap == "127.0.0.1:9092"


def test_the_environment_wins_over_the_state_file(clean_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_running_state(clean_environment, {"DATABASE_URL": "postgresql://a/b", "KAFKA_BOOTSTRAP_SERVERS": "up:1"})
    (clean_environment / "keys.env").write_text("export CARTERA_ADMIN_KEY=ck_a_saved\n")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:2")
    monkeypatch.setenv("CARTERA_SEGMENTER_URL", "http://segmenter.internal:80/")
    monkeypatch.setenv("CARTERA_ADMIN_KEY", "ck_a_env")
    conn = resolve()
    assert conn.bootstrap == "env:2" and conn.database_url == "postgresql://a/b"
    assert conn.url("segmenter") == "http://segmenter.internal:80"
    assert conn.key("admin") == "ck_a_env"


def test_the_state_of_a_cartera_up_that_is_gone_is_ignored(clean_environment: Path) -> None:
    state = {"pid": 2**22 + 12345, "database_url": "postgresql://gone/db", "kafka_bootstrap_servers": "gone:1"}
    (clean_environment / STATE_FILE).write_text(json.dumps(state))
    assert resolve().bootstrap == "127.0.0.1:9092"
    (clean_environment / STATE_FILE).write_text("{broken")
    assert resolve().bootstrap == "127.0.0.1:9092"


def test_passwords_never_appear_in_what_is_printed() -> None:
    assert redact("postgresql://app:s3cret@db:5432/cartera") == "postgresql://app:***@db:5432/cartera"
    assert redact("postgresql://postgres@127.0.0.1/postgres") == "postgresql://postgres@127.0.0.1/postgres"


# --- HTTP commands ---------------------------------------------------------------------------------------


def test_an_unreachable_service_is_one_line_and_exit_1(
    http: Callable[[Handler], list[httpx.Request]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    http(refused)
    monkeypatch.setenv("CARTERA_ADMIN_KEY", "ck_a_x")
    code, _, err = run(capsys, "policy", "show")
    assert code == 1
    assert err.startswith("cartera policy: cannot reach segmenter at http://127.0.0.1:8002")
    assert "is it running?" in err and "CARTERA_SEGMENTER_URL" in err and err.count("\n") == 1


def test_a_command_needing_a_key_says_where_keys_come_from(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "refit")
    assert code == 1
    assert "no admin key" in err and "CARTERA_ADMIN_KEY" in err and "keys.env" in err


def test_a_refused_key_is_reported_as_such(
    http: Callable[[Handler], list[httpx.Request]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = http(lambda r: httpx.Response(401, json={"detail": "unknown or revoked API key"}))
    monkeypatch.setenv("CARTERA_ADMIN_KEY", "ck_a_old")
    code, _, err = run(capsys, "refit")
    assert code == 1
    assert "scoring refused the key: unknown or revoked API key" in err
    assert seen[0].headers["authorization"] == "Bearer ck_a_old"


def test_a_policy_is_shown_as_a_document_and_set_from_a_file(
    http: Callable[[Handler], list[httpx.Request]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    policy = {"suspension": {"mode": "fixed", "days": 365}}

    def segmenter(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"version": 0, "created_at": None, "created_by": None, "policy": {}})
        return httpx.Response(200, json={"version": 4, "created_at": "t", "created_by": "ck_a_x", "policy": policy})

    seen = http(segmenter)
    monkeypatch.setenv("CARTERA_ADMIN_KEY", "ck_a_x")
    code, out, err = run(capsys, "policy", "show")
    assert (code, json.loads(out)) == (0, {}) and "version 0, the built-in default" in err
    shown = tmp_path / "shown.json"
    shown.write_text(json.dumps({"version": 3, "policy": policy}))  # `policy show --json` output is taken too
    code, out, err = run(capsys, "policy", "set", str(shown))
    assert code == 0 and json.loads(out) == policy and "version 4" in err
    assert seen[-1].method == "PUT" and json.loads(seen[-1].content) == policy


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"{not json", "is not valid JSON"), (b"[1, 2]", "must hold a JSON object"), (None, "cannot read")],
)
def test_a_bad_policy_file_fails_before_anything_is_sent(
    content: bytes | None,
    says: str,
    http: Callable[[Handler], list[httpx.Request]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    seen = http(refused)
    path = tmp_path / "policy.json"
    if content is not None:
        path.write_bytes(content)
    code, _, err = run(capsys, "policy", "set", str(path))
    assert code == 1 and says in err and not seen


def test_the_service_s_field_problems_are_listed(
    http: Callable[[Handler], list[httpx.Request]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    problems = [{"field": "suspension.days", "problem": "Input should be greater than or equal to 1"}]
    http(lambda r: httpx.Response(422, json={"detail": problems}))
    monkeypatch.setenv("CARTERA_ADMIN_KEY", "ck_a_x")
    path = tmp_path / "p.json"
    path.write_text('{"suspension": {"days": 0}}')
    code, _, err = run(capsys, "policy", "set", str(path))
    assert code == 1
    assert "segmenter answered 422: suspension.days: Input should be greater than or equal to 1" in err


def test_refit_for_another_workspace_refuses_a_key_of_a_different_one(
    http: Callable[[Handler], list[httpx.Request]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [{"prefix": "ck_a_x", "role": "admin", "workspace_id": "default", "created_at": "t", "revoked_at": None}]
    seen = http(lambda r: httpx.Response(200, json=keys))
    monkeypatch.setenv("CARTERA_ADMIN_KEY", "ck_a_x")
    code, _, err = run(capsys, "refit", "--workspace", "florist")
    assert code == 1 and "belongs to workspace 'default', not 'florist'" in err
    assert [r.url.path for r in seen] == ["/v1/keys"]  # nothing was fitted


def test_refit_sends_the_calibration_end_and_summarises_the_fit(
    http: Callable[[Handler], list[httpx.Request]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    done = {"workspace_id": "default", "as_of": "2026-01-01T00:00:00Z", "customers": 60, "bgnbd_fit_id": 7,
            "gamma_gamma_fit_id": 8, "converged": True, "published": 60, "holdout": None}  # fmt: skip
    seen = http(lambda r: httpx.Response(200, json=done))
    monkeypatch.setenv("CARTERA_ADMIN_KEY", "ck_a_x")
    code, out, _ = run(capsys, "refit", "--as-of", "2026-01-01T00:00:00Z")
    assert code == 0
    assert json.loads(seen[0].content) == {"as_of": "2026-01-01T00:00:00+00:00"}
    assert "refitted workspace default" in out and "60 customers" in out and "BG/NBD fit #7 (converged)" in out


# --- import ------------------------------------------------------------------------------------------------


def test_a_file_is_streamed_to_ingest_with_its_format_and_a_progress_bar(
    http: Callable[[Handler], list[httpx.Request]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    body = b"customer_id,occurred_at,amount\nc-1,2025-01-01,10\n"
    summary = {"accepted": 1, "new": 1, "rejected": 0, "errors": [], "errors_truncated": False}
    seen = http(lambda r: httpx.Response(200, json=summary))
    monkeypatch.setenv("CARTERA_WRITE_KEY", "ck_w_x")
    path = tmp_path / "orders.csv"
    path.write_bytes(body)
    code, out, err = run(capsys, "import", str(path), "--progress")
    assert code == 0
    assert "accepted 1 rows (1 new, 0 already imported), rejected 0" in out
    assert "importing orders.csv" in err and "100%" in err
    request = seen[0]
    assert (request.method, request.url.path, request.url.params["format"]) == ("POST", "/v1/import", "csv")
    assert request.headers["content-type"] == "text/csv" and request.headers["authorization"] == "Bearer ck_w_x"
    assert request.content == body


def test_rejected_rows_are_listed_by_line_and_exit_1(
    http: Callable[[Handler], list[httpx.Request]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    errors = [{"line": 3, "errors": [{"field": "amount", "problem": "Input should be a valid decimal"}]}]
    summary = {"accepted": 5, "new": 2, "rejected": 1, "errors": errors, "errors_truncated": False}
    seen = http(lambda r: httpx.Response(200, json=summary))
    monkeypatch.setenv("CARTERA_ADMIN_KEY", "ck_a_x")  # an admin key may import too
    path = tmp_path / "history.jsonl"
    path.write_text('{"customer_id": "c"}\n')
    code, out, err = run(capsys, "import", str(path), "--no-progress")
    assert code == 1 and err == ""
    assert "accepted 5 rows (2 new, 3 already imported), rejected 1" in out
    assert "  line 3: amount: Input should be a valid decimal" in out
    assert seen[0].headers["content-type"] == "application/x-ndjson"


def test_a_missing_file_is_a_clear_failure(
    http: Callable[[Handler], list[httpx.Request]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    seen = http(refused)
    monkeypatch.setenv("CARTERA_WRITE_KEY", "ck_w_x")
    code, _, err = run(capsys, "import", str(tmp_path / "nowhere.csv"))
    assert code == 1 and "cannot read" in err and "No such file" in err and not seen


def test_the_summary_says_how_many_rejections_were_not_listed() -> None:
    errors = [{"line": n, "errors": [{"field": "body", "problem": "bad"}]} for n in range(100)]
    text = describe({"accepted": 0, "new": 0, "rejected": 250, "errors": errors, "errors_truncated": True})
    assert "150 more rejected lines not listed" in text


def test_progress_is_drawn_only_when_it_changes_and_only_when_enabled() -> None:
    stream = StringIO()
    bar = Progress("f.csv", 1000, enabled=True, stream=stream)
    for _ in range(10):
        bar.advance(1)  # 1 % of the file: one redraw
    bar.advance(990)
    bar.finish()
    assert stream.getvalue().count("\r") == 3  # 0 %, 1 %, 100 %
    assert stream.getvalue().endswith("100%  1.0 kB\n")
    quiet = StringIO()
    silent = Progress("f.csv", None, enabled=False, stream=quiet)
    silent.advance(5)
    silent.finish()
    assert quiet.getvalue() == ""


# --- replay ------------------------------------------------------------------------------------------------


def test_since_takes_a_moment_or_an_age() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert parse_since("6h", now) == now - timedelta(hours=6)
    assert parse_since("2d", now) == now - timedelta(days=2)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2026-11-20T10:00:00Z", now) == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert parse_since("2026-11-20T10:00:00+01:00", now) == datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert parse_since("2026-11-19", now) == datetime(2026, 11, 19, tzinfo=UTC)  # no offset: UTC
    for bad in ("yesterday", "6 hours", "-2d", "2026-11-21"):
        with pytest.raises(UsageError):
            parse_since(bad, now)


# --- dead letters ------------------------------------------------------------------------------------------


def record(value: bytes, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("events.dlq", 2, offset, 0, 0, b"default:c-1", value, None, 0, len(value), [])


def letter(message: Any) -> bytes:
    body = {"topic": "events", "partition": 1, "offset": 41, "group": "segmenter.scores", "key": "default:c-1",
            "reason": "InvalidOperation: bad amount", "failed_at": "2026-11-20T10:00:00+00:00", "message": message}  # fmt: skip
    return orjson.dumps(body)


def test_a_dead_letter_names_the_failing_group_and_the_original_message() -> None:
    envelope = {"event_id": "e-1", "workspace_id": "default", "type": "order_completed", "payload": {"amount": "x"}}
    d = DeadLetter.from_record(record(letter(envelope), offset=7))
    assert d.id == "segmenter.scores:events:1:41"
    assert (d.topic, d.group, d.key, d.schema) == ("events", "segmenter.scores", "default:c-1", "segmenter")
    assert (d.dlq_topic, d.dlq_partition, d.dlq_offset) == ("events.dlq", 2, 7)
    assert orjson.loads(d.original()) == envelope
    assert d.event() == ("default", "e-1")


def test_bytes_that_were_not_json_are_republished_exactly() -> None:
    raw = b"\xff not json"
    d = DeadLetter.from_record(record(letter(base64.b64encode(raw).decode())))
    assert d.original() == raw and d.event() is None


def test_a_message_that_was_a_json_string_stays_one() -> None:
    assert DeadLetter.from_record(record(letter("not base64!"))).original() == b'"not base64!"'
    # Valid base64, but of bytes that are JSON: the consumer would have kept those as JSON, so it was a string.
    assert DeadLetter.from_record(record(letter("MTI="))).original() == b'"MTI="'


def test_a_message_on_a_dead_letter_topic_that_is_not_a_dead_letter_is_still_listed() -> None:
    d = DeadLetter.from_record(record(b"something else", offset=3))
    assert d.id == "events.dlq:2:3" and d.topic == "events" and d.schema is None
    assert d.reason == "not a Cartera dead letter"


# --- status ------------------------------------------------------------------------------------------------


def test_lag_counts_what_each_group_has_not_consumed_on_the_topics_it_commits_on() -> None:
    tp = [TopicPartition("events", p) for p in range(3)]
    other = TopicPartition("scores", 0)
    begins = dict.fromkeys([*tp, other], 0)
    ends = {tp[0]: 10, tp[1]: 5, tp[2]: 4, other: 9}
    committed = {tp[0]: 7, tp[1]: 5, tp[2]: -1, other: -1}  # partition 2: never committed, all of it unread
    assert group_lag("segmenter", committed, begins, ends) == [{"group": "segmenter", "topic": "events", "lag": 7}]


@asynccontextmanager
async def broker_down(conn: Connection) -> AsyncIterator[Any]:
    raise clients.broker_error(conn, ConnectionRefusedError("Connect call failed"))
    yield  # pragma: no cover


@asynccontextmanager
async def database_down(conn: Connection, schema: str) -> AsyncIterator[Any]:
    raise clients.database_error(conn, schema, OSError("Connection refused"))
    yield  # pragma: no cover


def test_status_reports_every_unreachable_part_and_exits_1(
    http: Callable[[Handler], list[httpx.Request]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    http(refused)
    monkeypatch.setattr(clients, "kafka_admin", broker_down)
    monkeypatch.setattr(clients, "kafka_consumer", broker_down)
    monkeypatch.setattr(clients, "database", database_down)
    code, out, _ = run(capsys, "status", "--json")
    report = json.loads(out)
    assert code == 1 and report["healthy"] is False
    problems = "\n".join(report["problems"])
    for service in ("ingest", "segmenter", "scoring", "campaigns"):
        assert f"{service}: unreachable (ConnectError)" in problems
    assert "cannot use the broker at 127.0.0.1:9092: Connect call failed" in problems
    assert "cannot use PostgreSQL at postgresql://postgres@127.0.0.1:5432/postgres: Connection refused" in problems
    code, out, _ = run(capsys, "status")
    assert code == 1 and "unhealthy: 6 problems" in out


# --- database errors ---------------------------------------------------------------------------------------


class UndefinedTableError(Exception):
    """Named as asyncpg names it; the mapping goes by name."""


def test_database_failures_become_one_line_without_secrets() -> None:
    conn = Connection("postgresql://app:pw@db:5432/cartera", "k:9092", {}, Path("."))
    lost = clients.database_error(conn, "ingest", OSError("Connection refused"))
    assert str(lost) == "cannot use PostgreSQL at postgresql://app:***@db:5432/cartera: Connection refused"
    missing = clients.database_error(conn, "ingest", DBAPIError("SELECT", {}, UndefinedTableError("no outbox")))
    assert "the ingest schema is not migrated" in str(missing) and "cartera migrate" in str(missing)


async def test_a_failure_inside_a_database_block_is_a_command_error() -> None:
    conn = Connection("postgresql://postgres@127.0.0.1:1/none", "k:9092", {}, Path("."))
    with pytest.raises(CommandError, match="cannot use PostgreSQL at postgresql://postgres@127.0.0.1:1/none"):
        async with clients.database(conn, "ingest"):
            raise ConnectionRefusedError("Connection refused")
    with pytest.raises(CommandError, match="DATABASE_URL must start with postgresql://"):
        async with clients.database(Connection("mysql://x/y", "k", {}, Path(".")), "ingest"):
            pass
