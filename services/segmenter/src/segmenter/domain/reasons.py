"""Why a customer left, and whether they ever answer: read from what was recorded about them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

# Issue kinds as stored in customer_issue.kind.
COMPLAINT = "complaint"
DELIVERY_FAILED = "delivery_failed"
DELIVERY_LATE = "delivery_late"
TICKET = "support_ticket"
CALL = "call_reason"


@dataclass(frozen=True, slots=True)
class Issue:
    kind: str
    ref: str
    reason_code: str | None
    opened_at: datetime
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LeaveReasons:
    unhappy: bool
    reasons: tuple[str, ...]


NONE = LeaveReasons(False, ())


def leave_reasons(
    issues: Iterable[Issue], *, last_order_at: datetime, lapse_at: datetime, window_days: int
) -> LeaveReasons:
    """Issues around the end of the relationship explain it; an open complaint or a recent delivery
    problem means the customer left unhappy.

    "Around" is from `window_days` before the last order up to the lapse: older issues were
    followed by more orders, so they did not drive the customer away.
    """
    start = last_order_at - timedelta(days=window_days)
    unhappy = False
    reasons: list[str] = []
    for issue in sorted(issues, key=lambda i: (i.opened_at, i.kind, i.ref)):
        open_complaint = issue.kind == COMPLAINT and (issue.resolved_at is None or issue.resolved_at > lapse_at)
        if not (start <= issue.opened_at <= lapse_at or open_complaint):
            continue
        if open_complaint or issue.kind in (DELIVERY_FAILED, DELIVERY_LATE):
            unhappy = True
        label = f"{issue.kind}:{issue.reason_code or 'unspecified'}"
        if label not in reasons:
            reasons.append(label)
    return LeaveReasons(unhappy, tuple(reasons))


def responsiveness(
    *, contacted_at: datetime | None, responded_at: datetime | None, last_order_at: datetime | None
) -> str:
    """A responder answered something (opened, clicked, replied, called in) or bought after being contacted."""
    if responded_at is not None:
        return "responder"
    if contacted_at is None:
        return "unknown"
    if last_order_at is not None and last_order_at > contacted_at:
        return "responder"
    return "non_responder"
