"""Log lines carry their context; trace context is read, made and handed on by the rules of W3C."""

from __future__ import annotations

import logging

import orjson

from cartera_common.logs import JsonFormatter, bind, log_context, name_service
from cartera_common.tracing import batch_span, request_span, setup_tracing, trace_for, trace_id_of, valid

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def line(message: str = "hello") -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)
    return dict(orjson.loads(JsonFormatter().format(record)))


def test_a_line_carries_its_service_and_the_context_it_was_written_in() -> None:
    name_service("tests")
    assert line()["service"] == "tests"
    with log_context(workspace_id="w1", event_id="e1"):
        with log_context(topic="events", offset=None):
            inner = line()
        outer = line()
    assert (inner["workspace_id"], inner["event_id"], inner["topic"]) == ("w1", "e1", "events")
    assert "offset" not in inner  # None is left out
    assert "topic" not in outer and outer["workspace_id"] == "w1"
    assert "workspace_id" not in line()


def test_bind_lasts_for_the_rest_of_the_task() -> None:
    import contextvars

    def task() -> tuple[object, object]:
        bind(workspace_id="w9")
        return line().get("workspace_id"), line().get("workspace_id")

    assert contextvars.copy_context().run(task) == ("w9", "w9")
    assert "workspace_id" not in line()


def test_a_well_formed_traceparent_is_continued_and_a_bad_one_starts_a_new_trace() -> None:
    setup_tracing("tests")  # what every service does at start; no exporter without an OTLP endpoint
    assert valid(TRACE) == TRACE and valid(" " + TRACE.upper() + " ") == TRACE
    for bad in (None, "", "garbage", "00-xyz-00f067aa0ba902b7-01", TRACE[:-1]):
        assert valid(bad) is None
    with request_span("POST /v1/events", TRACE) as continued:
        assert trace_id_of(continued) == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert continued != TRACE  # a new span in the same trace
        assert line()["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    with request_span("POST /v1/events", "garbage") as fresh:
        assert fresh is not None and trace_id_of(fresh) != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_inside_a_batch_each_customer_has_the_trace_of_its_own_event() -> None:
    setup_tracing("tests")
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with batch_span("apply events", {("w", "c1"): TRACE, ("w", "c2"): other}):
        assert trace_for("w", "c1") == TRACE and trace_for("w", "c2") == other
        assert trace_for("w", "c3") is None
        assert line()["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"  # the batch continues the first trace
    assert trace_for("w", "c1") is None
