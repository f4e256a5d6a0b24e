"""When a message may go: the frequency cap, quiet hours and the daily sending limit.

Each of them defers, never drops: a message held back gets the earliest moment it may go, and
the machine's `defer` moves the step there. The defaults, where the issue left them open:

- at most 2 messages per customer in any 7 days, across all campaigns (a sliding window);
- no sending from 21:00 to 09:00 in the customer's own time zone (an unknown or missing zone
  falls back to the workspace's, UTC unless set);
- at most 10,000 messages a day per workspace, the day counted in the workspace's zone, so a
  large imported backlog of lapsed customers is worked through over days, best campaigns first.

Call tasks count and wait like messages: a salesperson is not asked to call at night either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field

from cartera_common.events.base import RefusesNul, TimeZone


class PacingRules(RefusesNul):
    """The workspace's pacing; validated at the edge, like the policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cap_messages: Annotated[int, Field(ge=1, le=100)] = 2
    cap_days: Annotated[float, Field(gt=0, le=365)] = 7
    quiet_start: time = Field(default=time(21), description="Local time quiet hours begin; equal to the end: none.")
    quiet_end: time = time(9)
    default_time_zone: TimeZone = "UTC"
    daily_limit: Annotated[int, Field(ge=0)] = 10_000

    @property
    def cap_window(self) -> timedelta:
        return timedelta(days=self.cap_days)


DEFAULT_PACING = PacingRules()


@dataclass(frozen=True, slots=True)
class Pending:
    """A message that is due for one customer; `key` names it for the caller (an enrolment id)."""

    key: str
    priority: int
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Slot:
    key: str
    at: datetime  # `now`: send now; later: defer to then


@dataclass(frozen=True, slots=True)
class Allowance:
    count: int  # how many messages may go now
    opens_at: datetime  # `now` while count > 0; else when the next day's budget opens


def zone(name: str | None, rules: PacingRules = DEFAULT_PACING) -> ZoneInfo:
    """A bad zone in a profile must not stop the sequence, so it falls back to the workspace's."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(rules.default_time_zone)


def in_quiet_hours(at: datetime, tz: ZoneInfo, rules: PacingRules = DEFAULT_PACING) -> bool:
    start, end, local = rules.quiet_start, rules.quiet_end, _aware(at).astimezone(tz).time()
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the quiet hours span midnight


def after_quiet_hours(at: datetime, tz: ZoneInfo, rules: PacingRules = DEFAULT_PACING) -> datetime:
    """`at` if it is not quiet, else the moment the quiet hours end on the customer's clock."""
    if not in_quiet_hours(at, tz, rules):
        return at
    local = at.astimezone(tz)
    day = local.date() if local.time() < rules.quiet_end else local.date() + timedelta(days=1)
    return _instant(day, rules.quiet_end, tz)


def after_cap(at: datetime, sent_at: Iterable[datetime], rules: PacingRules = DEFAULT_PACING) -> datetime:
    """The earliest moment from `at` when one more message keeps every window under the cap."""
    window = rules.cap_window
    recent = sorted(s for s in sent_at if at - window < s <= at)
    if len(recent) < rules.cap_messages:
        return at
    # Once the oldest messages that fill the cap leave the window, there is room for one more.
    return recent[len(recent) - rules.cap_messages] + window


def earliest_send(
    now: datetime, *, sent_at: Iterable[datetime], time_zone: str | None, rules: PacingRules = DEFAULT_PACING
) -> datetime:
    """The cap first, then quiet hours: waiting only empties the window, so the cap still holds after."""
    return after_quiet_hours(after_cap(_aware(now), sent_at, rules), zone(time_zone, rules), rules)


def by_priority(pending: Iterable[Pending]) -> list[Pending]:
    """Higher priority first, then the longest waiting; the key settles ties so the order repeats."""
    return sorted(pending, key=lambda p: (-p.priority, p.due_at, p.key))


def pace(
    pending: Iterable[Pending],
    *,
    now: datetime,
    sent_at: Iterable[datetime],
    time_zone: str | None,
    rules: PacingRules = DEFAULT_PACING,
) -> list[Slot]:
    """One customer's due messages across campaigns: higher priority takes the room the cap leaves, the rest wait.

    The waiting ones are offered the same moment and compete again then, by priority.
    """
    sent = list(sent_at)
    slots: list[Slot] = []
    for p in by_priority(pending):
        at = earliest_send(now, sent_at=sent, time_zone=time_zone, rules=rules)
        if at == now:
            sent.append(now)
        slots.append(Slot(p.key, at))
    return slots


def day_start(now: datetime, rules: PacingRules = DEFAULT_PACING) -> datetime:
    """When the workspace's sending day began: the messages sent since count against today's limit."""
    tz = ZoneInfo(rules.default_time_zone)
    return _instant(_aware(now).astimezone(tz).date(), time(0), tz)


def daily_allowance(used_today: int, now: datetime, rules: PacingRules = DEFAULT_PACING) -> Allowance:
    """What is left of today's budget; once it is spent, the next day's opens at the workspace's midnight."""
    left = max(0, rules.daily_limit - used_today)
    if left:
        return Allowance(left, now)
    tz = ZoneInfo(rules.default_time_zone)
    return Allowance(0, _instant(_aware(now).astimezone(tz).date() + timedelta(days=1), time(0), tz))


def _instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The first instant the clock in `tz` reads `wall` on `day`.

    A wall time skipped by a DST jump maps past the jump (fold 0 uses the offset from before it),
    which is a little late but never inside the interval it was meant to end.
    """
    return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("pacing needs timezone-aware datetimes")
    return at
