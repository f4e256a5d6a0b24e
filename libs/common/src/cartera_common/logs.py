"""JSON logs, one object a line, carrying the context they were written in.

Every line names its service. Inside `log_context(...)` (a request, a consumed batch, a delivery
round) it also carries that block's fields: workspace, event or message id, topic and offsets,
and the trace id of the work, so one event can be followed across the services' logs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType

import orjson
from opentelemetry import trace

_EXTRA_KEYS = ("event_id", "workspace_id", "message_id", "topic", "partition", "offset", "service")
_CONTEXT: ContextVar[Mapping[str, object]] = ContextVar("cartera_log_context", default=MappingProxyType({}))
_SERVICE: list[str] = []  # the process's service, once it is known


def name_service(service: str) -> None:
    """Every line this process logs from now on names `service`."""
    _SERVICE[:] = [service]


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Adds `fields` (None values left out) to every line logged inside the block, nested blocks merged."""
    token = _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def bind(**fields: object) -> None:
    """Adds `fields` for the rest of the current task (an HTTP request is one): no block to close."""
    _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if _SERVICE:
            entry["service"] = _SERVICE[0]
        entry.update(_CONTEXT.get())
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = f"{span.trace_id:032x}"
        for key in _EXTRA_KEYS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
