"""Schedules: pure functions of a schedule and a frozen ``now``."""

from datetime import UTC, date, datetime, timedelta

import pytest

from recsys.digests.schedule import (
    Frequency,
    Schedule,
    SchedulePolicy,
    covers_from,
    jitter_seconds,
    next_send_at,
    parse_frequency,
    period_of,
)

SAT = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)  # a Saturday
BERLIN_DAILY = Schedule("Europe/Berlin", 7, Frequency.DAILY)


def test_daily_is_tomorrow_at_the_local_send_hour() -> None:
    assert next_send_at(BERLIN_DAILY, SAT, user_id=1) == datetime(2026, 11, 22, 6, tzinfo=UTC)


def test_the_local_hour_holds_across_a_daylight_saving_change() -> None:
    # Berlin leaves summer time on 25 October 2026: 07:00 is 05:00 UTC before, 06:00 after.
    before = datetime(2026, 10, 24, 5, 30, tzinfo=UTC)
    assert next_send_at(BERLIN_DAILY, before, user_id=1) == datetime(2026, 10, 25, 6, tzinfo=UTC)
    spring = datetime(2026, 3, 28, 6, 30, tzinfo=UTC)
    assert next_send_at(BERLIN_DAILY, spring, user_id=1) == datetime(2026, 3, 29, 5, tzinfo=UTC)


def test_the_next_day_is_counted_in_the_users_zone() -> None:
    # 23:30 UTC on Saturday is already Sunday morning in Tokyo: next is Monday 07:00 JST.
    tokyo = Schedule("Asia/Tokyo", 7, Frequency.DAILY)
    late = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)
    assert next_send_at(tokyo, late, user_id=1) == datetime(2026, 11, 22, 22, tzinfo=UTC)


def test_weekdays_skip_the_weekend() -> None:
    friday = datetime(2026, 11, 20, 7, tzinfo=UTC)
    weekdays = Schedule("UTC", 7, Frequency.WEEKDAYS)
    assert next_send_at(weekdays, friday, user_id=1) == datetime(2026, 11, 23, 7, tzinfo=UTC)
    assert next_send_at(weekdays, SAT, user_id=1) == datetime(2026, 11, 23, 7, tzinfo=UTC)


def test_weekly_is_the_next_monday_even_from_a_monday() -> None:
    weekly = Schedule("UTC", 7, Frequency.WEEKLY)
    monday = datetime(2026, 11, 23, 7, tzinfo=UTC)
    assert next_send_at(weekly, SAT, user_id=1) == monday
    assert next_send_at(weekly, monday, user_id=1) == monday + timedelta(days=7)


def test_a_late_planner_schedules_one_slot_ahead_not_a_backlog() -> None:
    # Planned a week late: the next send is tomorrow, not each of the missed days.
    a_week_late = SAT + timedelta(days=7)
    assert next_send_at(BERLIN_DAILY, a_week_late, user_id=1) == datetime(
        2026, 11, 29, 6, tzinfo=UTC
    )


def test_jitter_is_stable_bounded_and_spread() -> None:
    day = date(2026, 11, 22)
    values = [jitter_seconds(uid, day, 600) for uid in range(1000)]
    assert values == [jitter_seconds(uid, day, 600) for uid in range(1000)]
    assert all(0 <= v < 600 for v in values)
    assert len(set(values)) > 400  # spread over the window, not bunched
    assert jitter_seconds(1, day, 0) == 0


def test_jitter_moves_the_send_time_later_only() -> None:
    plain = next_send_at(BERLIN_DAILY, SAT, user_id=42)
    jittered = next_send_at(BERLIN_DAILY, SAT, user_id=42, jitter_s=600)
    assert timedelta(0) <= jittered - plain < timedelta(seconds=600)


def test_the_period_is_the_local_date_or_the_iso_week() -> None:
    late = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)
    assert period_of(Schedule("UTC", 7, Frequency.DAILY), late) == "2026-11-21"
    assert period_of(Schedule("Asia/Tokyo", 7, Frequency.DAILY), late) == "2026-11-22"
    assert period_of(Schedule("UTC", 7, Frequency.WEEKLY), late) == "2026-W47"


def test_a_first_digest_looks_back_the_first_lookback() -> None:
    policy = SchedulePolicy(first_lookback=timedelta(days=7))
    assert covers_from(SAT, None, policy) == SAT - timedelta(days=7)


def test_a_regular_digest_covers_since_the_previous_one() -> None:
    yesterday = SAT - timedelta(days=1)
    assert covers_from(SAT, yesterday, SchedulePolicy()) == yesterday


def test_a_catch_up_after_a_long_gap_is_capped() -> None:
    policy = SchedulePolicy(catch_up_cap=timedelta(days=14))
    assert covers_from(SAT, SAT - timedelta(days=90), policy) == SAT - timedelta(days=14)


def test_bad_schedules_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="daily, weekdays, weekly"):
        parse_frequency("hourly")
    with pytest.raises(ValueError, match="send_hour"):
        Schedule("UTC", 24, Frequency.DAILY)
    with pytest.raises(ValueError, match="unknown time zone"):
        Schedule("Mars/Olympus_Mons", 7, Frequency.DAILY)
