"""The Prometheus metrics every service exposes on /metrics, with one set of names and labels."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INTAKE = Counter("cartera_intake_events_total", "Events received over HTTP.", ["type", "result"])
CONSUMED = Counter("cartera_consumed_events_total", "Messages handled by a consumer.", ["group", "topic", "result"])
DEAD_LETTERS = Counter("cartera_dead_letters_total", "Messages sent to a dead-letter topic.", ["topic"])
PROCESSING = Histogram(
    "cartera_processing_seconds",
    "Time to apply one consumed batch, database commit included.",
    ["group"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Gauges say how far behind something is: with several worker processes, the worst live one counts.
CONSUMER_LAG = Gauge(
    "cartera_consumer_lag",
    "Messages behind the high watermark.",
    ["group", "topic", "partition"],
    multiprocess_mode="livemax",
)
PUBLISHED = Counter("cartera_outbox_published_total", "Outbox rows published to Kafka.", ["service", "topic"])
OUTBOX_DEPTH = Gauge("cartera_outbox_depth", "Outbox rows not yet published.", ["service"], multiprocess_mode="livemax")
REPLAYED = Counter("cartera_outbox_replayed_total", "Rows republished after the broker came back empty.", ["service"])
MESSAGES = Counter("cartera_messages_total", "Win-back messages handed to a provider.", ["channel", "result"])
SCHEDULER_BACKLOG = Gauge(
    "cartera_scheduler_backlog",
    "Work due and not yet done: enrolments to step (service=campaigns), messages to deliver (campaigns-delivery).",
    ["service"],
    multiprocess_mode="livemax",
)
