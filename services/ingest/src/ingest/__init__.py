"""Cartera ingest: every event enters here and is durable before the 202."""
