"""The campaigns schema: for now only the shared plumbing (inbox, outbox, key copy)."""

from __future__ import annotations

from cartera_common.db import service_metadata
from cartera_common.plumbing_tables import Plumbing

SCHEMA = "campaigns"
metadata = service_metadata(SCHEMA)
plumbing = Plumbing(metadata)
