"""Pacing: caps defer rather than drop, by priority; quiet hours on the customer's clock, DST included."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.domain.pacing import (
    DEFAULT_PACING,
    PacingRules,
    Pending,
    Slot,
    after_cap,
    after_quiet_hours,
    daily_allowance,
    day_start,
    earliest_send,
    in_quiet_hours,
    pace,
    zone,
)

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # 14:00 in Madrid, 08:00 in New York, 17:30 in Kolkata
ZONES = ("Europe/Madrid", "America/New_York", "Asia/Kolkata")


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(name: str, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(name))


def test_under_the_cap_a_message_goes_now() -> None:
    assert after_cap(NOW, []) == NOW
    assert after_cap(NOW, [NOW - hours(1)]) == NOW
    assert after_cap(NOW, [NOW - timedelta(days=8), NOW - timedelta(days=7)]) == NOW  # out of the window


def test_at_the_cap_a_message_waits_until_the_oldest_leaves_the_window() -> None:
    sent = [NOW - timedelta(days=6), NOW - timedelta(days=1)]
    assert after_cap(NOW, sent) == NOW + timedelta(days=1)
    three = [NOW - timedelta(days=5), NOW - timedelta(days=3), NOW - hours(1)]
    assert after_cap(NOW, three) == NOW + timedelta(days=4)  # two must leave before there is room


def test_when_the_cap_bites_the_higher_priority_goes_now_and_the_rest_wait_not_drop() -> None:
    pending = [Pending("light", 10, NOW - hours(2)), Pending("high", 40, NOW), Pending("std", 20, NOW - hours(1))]
    slots = pace(pending, now=NOW, sent_at=[NOW - timedelta(days=2)], time_zone="Europe/Madrid")
    assert slots == [
        Slot("high", NOW),
        Slot("std", NOW + timedelta(days=5)),
        Slot("light", NOW + timedelta(days=5)),
    ]


def test_equal_priorities_go_in_the_order_they_became_due() -> None:
    pending = [Pending("b", 5, NOW - hours(1)), Pending("a", 5, NOW - hours(3))]
    assert [s.key for s in pace(pending, now=NOW, sent_at=[], time_zone=None) if s.at == NOW] == ["a", "b"]


@given(
    st.lists(st.integers(0, 14 * 24), max_size=8),
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 48)), min_size=1, max_size=6),
    st.sampled_from(ZONES),
)
def test_pacing_never_drops_never_sends_early_and_never_breaks_the_cap(
    ago: list[int], due: list[tuple[int, int]], tz: str
) -> None:
    sent = [NOW - hours(h) for h in ago if h > 0]
    pending = [Pending(f"m{i}", p, NOW - hours(h)) for i, (p, h) in enumerate(due)]
    slots = pace(pending, now=NOW, sent_at=sent, time_zone=tz)
    assert sorted(s.key for s in slots) == sorted(p.key for p in pending)
    assert all(s.at >= NOW and not in_quiet_hours(s.at, ZoneInfo(tz)) for s in slots)
    going = sent + [s.at for s in slots if s.at == NOW]
    window, cap = DEFAULT_PACING.cap_window, DEFAULT_PACING.cap_messages
    if len(going) > len(sent):
        assert sum(NOW - window < t <= NOW for t in going) <= cap
    for s in slots:
        if s.at > NOW:
            assert sum(s.at - window < t <= s.at for t in going) < cap


@pytest.mark.parametrize(
    ("tz", "at", "expected"),
    [
        ("Europe/Madrid", local("Europe/Madrid", 2026, 6, 10, 22, 0), local("Europe/Madrid", 2026, 6, 11, 9, 0)),
        ("Europe/Madrid", local("Europe/Madrid", 2026, 6, 10, 8, 59), local("Europe/Madrid", 2026, 6, 10, 9, 0)),
        ("Europe/Madrid", local("Europe/Madrid", 2026, 6, 10, 20, 59), local("Europe/Madrid", 2026, 6, 10, 20, 59)),
        ("America/New_York", NOW, local("America/New_York", 2026, 6, 10, 9, 0)),
        ("Asia/Kolkata", NOW, NOW),
        ("Asia/Kolkata", utc(2026, 6, 10, 15, 30), utc(2026, 6, 11, 3, 30)),  # 21:00 IST, half an hour off UTC
    ],
)
def test_quiet_hours_are_on_the_customer_s_own_clock(tz: str, at: datetime, expected: datetime) -> None:
    assert after_quiet_hours(at, ZoneInfo(tz)) == expected


@pytest.mark.parametrize(
    ("tz", "evening", "morning_utc"),
    [
        # The night clocks go forward: 09:00 comes after ten wall hours but nine real ones.
        ("Europe/Madrid", local("Europe/Madrid", 2026, 3, 28, 23, 0), utc(2026, 3, 29, 7, 0)),
        ("America/New_York", local("America/New_York", 2026, 3, 7, 23, 0), utc(2026, 3, 8, 13, 0)),
        # The night clocks go back: eleven real hours.
        ("Europe/Madrid", local("Europe/Madrid", 2026, 10, 24, 23, 0), utc(2026, 10, 25, 8, 0)),
        ("America/New_York", local("America/New_York", 2026, 10, 31, 23, 0), utc(2026, 11, 1, 14, 0)),
        # Kolkata keeps no DST: the same offset on those nights.
        ("Asia/Kolkata", local("Asia/Kolkata", 2026, 3, 28, 23, 0), utc(2026, 3, 29, 3, 30)),
    ],
)
def test_quiet_hours_end_at_nine_local_across_dst_changes(tz: str, evening: datetime, morning_utc: datetime) -> None:
    assert after_quiet_hours(evening, ZoneInfo(tz)) == morning_utc
    assert after_quiet_hours(evening, ZoneInfo(tz)).astimezone(ZoneInfo(tz)).time() == time(9)


def test_a_quiet_hours_end_skipped_by_the_clock_change_lands_just_after_the_jump() -> None:
    rules = PacingRules(quiet_start=time(23), quiet_end=time(2, 30))  # 02:30 never happens on 2026-03-29 in Madrid
    madrid = ZoneInfo("Europe/Madrid")
    at = local("Europe/Madrid", 2026, 3, 29, 1, 0)
    moved = after_quiet_hours(at, madrid, rules)
    assert moved > at and not in_quiet_hours(moved, madrid, rules)
    assert moved - at <= hours(2)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)))
def test_after_quiet_hours_is_the_first_allowed_moment(at: datetime) -> None:
    for name in ZONES:
        tz = ZoneInfo(name)
        moved = after_quiet_hours(at, tz)
        assert moved >= at and not in_quiet_hours(moved, tz)
        if moved > at:
            assert in_quiet_hours(moved - timedelta(seconds=1), tz)


def test_an_unknown_or_missing_zone_falls_back_to_the_workspace_s() -> None:
    madrid = PacingRules(default_time_zone="Europe/Madrid")
    assert zone("Mars/Olympus_Mons", madrid) == ZoneInfo("Europe/Madrid")
    assert zone(None, madrid) == ZoneInfo("Europe/Madrid")
    assert zone("../../etc/passwd", madrid) == ZoneInfo("Europe/Madrid")
    assert zone("Asia/Kolkata", madrid) == ZoneInfo("Asia/Kolkata")
    assert zone(None) == ZoneInfo("UTC")
    late = utc(2026, 6, 10, 21, 30)  # 23:30 in Madrid, 21:30 in UTC
    assert earliest_send(late, sent_at=[], time_zone="nowhere", rules=madrid) == utc(2026, 6, 11, 7, 0)


def test_the_cap_and_quiet_hours_combine() -> None:
    sent = [utc(2026, 6, 3, 20, 0), utc(2026, 6, 8, 9, 0)]  # the cap frees up at 20:00 UTC = 22:00 in Madrid
    assert earliest_send(NOW, sent_at=sent, time_zone="Europe/Madrid") == local("Europe/Madrid", 2026, 6, 11, 9, 0)


def test_no_quiet_hours_when_start_equals_end() -> None:
    rules = PacingRules(quiet_start=time(0), quiet_end=time(0))
    assert not in_quiet_hours(local("Europe/Madrid", 2026, 6, 10, 3, 0), ZoneInfo("Europe/Madrid"), rules)


def test_daytime_quiet_hours_work_too() -> None:
    lunch = PacingRules(quiet_start=time(13), quiet_end=time(15))
    at = local("Europe/Madrid", 2026, 6, 10, 14, 0)
    assert after_quiet_hours(at, ZoneInfo("Europe/Madrid"), lunch) == local("Europe/Madrid", 2026, 6, 10, 15, 0)


def test_the_daily_limit_lets_through_what_is_left_then_opens_at_the_workspace_s_midnight() -> None:
    rules = PacingRules(daily_limit=10_000, default_time_zone="Europe/Madrid")
    assert daily_allowance(9_990, NOW, rules).count == 10
    assert daily_allowance(9_990, NOW, rules).opens_at == NOW
    spent = daily_allowance(10_000, NOW, rules)
    assert (spent.count, spent.opens_at) == (0, utc(2026, 6, 10, 22, 0))
    assert daily_allowance(12_000, NOW, rules).count == 0
    assert day_start(NOW, rules) == utc(2026, 6, 9, 22, 0)


def test_the_daily_limit_s_day_follows_dst() -> None:
    rules = PacingRules(daily_limit=1, default_time_zone="America/New_York")
    before_fall_back = local("America/New_York", 2026, 10, 31, 18, 0)
    assert daily_allowance(1, before_fall_back, rules).opens_at == utc(2026, 11, 1, 4, 0)
    after = local("America/New_York", 2026, 11, 1, 18, 0)
    assert daily_allowance(1, after, rules).opens_at == utc(2026, 11, 2, 5, 0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        earliest_send(datetime(2026, 6, 10, 12), sent_at=[], time_zone=None)
