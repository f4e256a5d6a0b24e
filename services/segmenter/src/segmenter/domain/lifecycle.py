"""Lifecycle status as a pure function of what the customer did, the policy and `now`.

Status is recomputed from event time every time, never stepped forward from the stored one,
so an imported history, a late order and a refund all land where they belong. The decision
also says when time alone will next change it (`due_at`), which the sweep indexes.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from datetime import datetime, timedelta

from cartera_common.events.changes import Status
from segmenter.domain.policy import Policy, Rules

MAX_RECENT_ORDERS = 64  # the rhythm is read from this many latest orders


@dataclass(frozen=True, slots=True)
class Facts:
    first_seen_at: datetime
    order_times: tuple[datetime, ...] = ()  # the latest orders, ascending
    first_order_at: datetime | None = None
    interest_at: datetime | None = None
    interest_kind: str | None = None
    industry: str | None = None
    segment: str | None = None
    p_alive: float | None = None
    p_alive_at: datetime | None = None
    winback_ended_at: datetime | None = None  # a win-back that ended without response


@dataclass(frozen=True, slots=True)
class Decision:
    status: Status
    since: datetime
    reason: str
    due_at: datetime | None
    usual_gap_days: float | None
    frequency: str | None
    lapse_at: datetime | None  # when the current absence crossed (or will cross) the suspension point


def evaluate(facts: Facts, policy: Policy, now: datetime) -> Decision:
    rules = policy.rules_for(facts.industry, facts.segment)
    times = facts.order_times
    if not times:
        if facts.interest_at is not None:
            kind = facts.interest_kind or "interest"
            return Decision("potential", facts.interest_at, f"showed interest ({kind})", None, None, None, None)
        return Decision("prospect", facts.first_seen_at, "known, no interest shown yet", None, None, None, None)

    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    usual = _sorted_median(sorted(gaps)) if gaps else None
    usual_days = usual / timedelta(days=1) if usual is not None else None
    frequency = policy.frequency_of(usual)
    first = facts.first_order_at or times[0]
    last = times[-1]

    def decide(status: Status, since: datetime, reason: str, due: datetime | None, lapse: datetime | None) -> Decision:
        return Decision(status, since, reason, due, usual_days, frequency, lapse)

    lapse_at, lapse_reason = _lapse(facts, rules, last, usual, now)
    lost_at = lapse_at + timedelta(days=rules.lost_after_days)
    winback_lost = facts.winback_ended_at is not None and facts.winback_ended_at >= lapse_at
    if winback_lost and facts.winback_ended_at is not None and facts.winback_ended_at <= now:
        return decide("lost", facts.winback_ended_at, "win-back ended without response", None, lapse_at)
    if now >= lost_at:
        return decide("lost", lost_at, f"lapsed for {rules.lost_after_days} days", None, lapse_at)
    if now >= lapse_at:
        return decide("lapsed", lapse_at, lapse_reason, lost_at, lapse_at)

    returned_at, away = _last_return(times, rules)
    if returned_at is not None and now < returned_at + timedelta(days=rules.reactivated_days):
        window_end = returned_at + timedelta(days=rules.reactivated_days)
        reason = f"ordered again after {away} days away"
        return decide("reactivated", returned_at, reason, min(window_end, lapse_at), lapse_at)
    if now < first + timedelta(days=rules.new_days):
        return decide("new", first, "first order", min(first + timedelta(days=rules.new_days), lapse_at), lapse_at)
    since = first + timedelta(days=rules.new_days)
    reason = f"ordering regularly since the first {rules.new_days} days"
    if returned_at is not None:
        since = max(since, returned_at + timedelta(days=rules.reactivated_days))
        reason = "back to a regular rhythm after returning"
    return decide("active", since, reason, lapse_at, lapse_at)


def _lapse(facts: Facts, rules: Rules, last: datetime, usual: timedelta | None, now: datetime) -> tuple[datetime, str]:
    """When the absence since the last order crosses the suspension point, and the words for why."""
    s = rules.suspension
    if s.mode == "probability":
        p, at = facts.p_alive, facts.p_alive_at
        if p is not None and at is not None and at >= last and p < s.threshold:
            return at, f"P(alive) {p:.2f} fell below {s.threshold:.2f}"
        return last + timedelta(days=s.days), f"no order for {s.days} days (no P(alive) below {s.threshold:.2f} yet)"
    after = _suspension_after(rules, usual)
    days = round(after / timedelta(days=1))
    how = "fixed" if s.mode == "fixed" or usual is None else f"{s.k:g} x usual gap, floor {s.floor_days} days"
    return last + after, f"no order for {days} days, past the suspension point ({how})"


def _suspension_after(rules: Rules, usual: timedelta | None) -> timedelta:
    s = rules.suspension
    if s.mode != "adaptive" or usual is None:
        return timedelta(days=s.days)
    return max(timedelta(days=s.floor_days), usual * s.k)


def _last_return(times: tuple[datetime, ...], rules: Rules) -> tuple[datetime | None, int]:
    """The latest order that came after an absence past the suspension point, judged by the rhythm then."""
    returned: tuple[datetime | None, int] = (None, 0)
    seen: list[timedelta] = []
    for before, order in zip(times, times[1:], strict=False):
        gap = order - before
        usual = _sorted_median(seen) if seen else None
        if gap > _suspension_after(rules, usual):
            returned = (order, gap.days)
        insort(seen, gap)
    return returned


def _sorted_median(ordered: list[timedelta]) -> timedelta:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
