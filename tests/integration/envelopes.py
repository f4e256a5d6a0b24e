"""Events as a consumer receives them, for tests that drive handlers in-process."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from cartera_common.events import Envelope


def make_envelope(workspace: str, customer: str, event_type: str, at: datetime, payload: dict[str, Any]) -> Envelope:
    return Envelope(
        event_id=str(uuid.uuid4()),
        type=event_type,
        workspace_id=workspace,
        customer_id=customer,
        occurred_at=at,
        received_at=at,
        payload=payload,
    )


def envelope(workspace: str, customer: str, event_type: str, at: datetime, **payload: Any) -> Envelope:
    return make_envelope(workspace, customer, event_type, at, payload)
