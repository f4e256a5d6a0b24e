"""Cartera's benchmark: intake, end-to-end and latency figures, each beside a baseline from the same run.

Run it with `make bench` (or `.venv/bin/python -m bench --quick` for a smoke run). It starts its own
PostgreSQL and broker unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set, exactly as the tests do.
"""
