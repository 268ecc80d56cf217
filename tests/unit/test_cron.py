"""Cron maths: parsing, next due times, and daylight-saving changes in a non-UTC zone."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from conveyor.cron import CronError, CronExpression, parse, zone

PRAGUE = ZoneInfo("Europe/Prague")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def runs(expression: str, start: datetime, count: int, tz: str = "UTC") -> list[datetime]:
    cron = parse(expression)
    found: list[datetime] = []
    at = start
    for _ in range(count):
        at = cron.next_after(at, tz)
        found.append(at)
    return found


def local(times: list[datetime], tz: ZoneInfo = PRAGUE) -> list[str]:
    return [t.astimezone(tz).strftime("%m-%d %H:%M%z") for t in times]


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("5 0 * * *", utc(2024, 1, 1, 0, 5), utc(2024, 1, 2, 0, 5)),  # strictly after
        ("5 0 * * *", utc(2024, 1, 1, 0, 4, 59), utc(2024, 1, 1, 0, 5)),
        ("0 18 * * *", utc(2024, 1, 1, 18, 0, 1), utc(2024, 1, 2, 18, 0)),
        ("*/30 * * * *", utc(2024, 1, 1, 10, 1), utc(2024, 1, 1, 10, 30)),
        ("0 2 * * 1", utc(2024, 1, 1, 2, 0), utc(2024, 1, 8, 2, 0)),  # Mondays
        ("0 2 * * mon", utc(2024, 1, 2), utc(2024, 1, 8, 2, 0)),
        ("0 0 * * 7", utc(2024, 1, 1), utc(2024, 1, 7)),  # 7 = Sunday
        ("0 0 * * 0", utc(2024, 1, 1), utc(2024, 1, 7)),
        ("0 * * * *", utc(2024, 1, 1, 23, 30), utc(2024, 1, 2, 0, 0)),
        ("0 0 29 2 *", utc(2025, 1, 1), utc(2028, 2, 29)),
        ("0 0 1 jan *", utc(2024, 6, 1), utc(2025, 1, 1)),
        ("15 9 1-7 * *", utc(2024, 1, 8), utc(2024, 2, 1, 9, 15)),
        ("0 0 13 * fri", utc(2024, 1, 1), utc(2024, 1, 5)),  # dom OR dow when both restricted
        ("5/20 * * * *", utc(2024, 1, 1, 0, 6), utc(2024, 1, 1, 0, 25)),
        ("@hourly", utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 1, 0)),
        ("@daily", utc(2024, 1, 1, 0, 0), utc(2024, 1, 2, 0, 0)),
    ],
)
def test_next_after(expression: str, start: datetime, expected: datetime) -> None:
    assert parse(expression).next_after(start) == expected


def test_every_five_minutes_in_order() -> None:
    got = runs("*/5 * * * *", utc(2024, 1, 1, 23, 52), 4)
    assert got == [
        utc(2024, 1, 1, 23, 55),
        utc(2024, 1, 2),
        utc(2024, 1, 2, 0, 5),
        utc(2024, 1, 2, 0, 10),
    ]


def test_time_zone_is_applied() -> None:
    # 08:00 in Prague is 07:00 UTC in winter and 06:00 UTC in summer
    assert parse("0 8 * * *").next_after(utc(2024, 1, 10), "Europe/Prague") == utc(2024, 1, 10, 7)
    assert parse("0 8 * * *").next_after(utc(2024, 7, 10), "Europe/Prague") == utc(2024, 7, 10, 6)


def test_daily_0230_across_spring_forward_runs_every_day_once() -> None:
    # 2024-03-31 02:00 CET → 03:00 CEST: 02:30 does not exist that day; it runs at 03:30
    got = runs("30 2 * * *", utc(2024, 3, 29, 12), 4, "Europe/Prague")
    assert local(got) == [
        "03-30 02:30+0100",
        "03-31 03:30+0200",
        "04-01 02:30+0200",
        "04-02 02:30+0200",
    ]
    assert got[1] == utc(2024, 3, 31, 1, 30)


def test_daily_0230_across_fall_back_runs_once_at_the_first_occurrence() -> None:
    # 2024-10-27 03:00 CEST → 02:00 CET: 02:30 happens twice that day; it runs once
    got = runs("30 2 * * *", utc(2024, 10, 25, 12), 4, "Europe/Prague")
    assert local(got) == [
        "10-26 02:30+0200",
        "10-27 02:30+0200",
        "10-28 02:30+0100",
        "10-29 02:30+0100",
    ]
    gaps = {b - a for a, b in itertools.pairwise(got)}
    assert gaps == {timedelta(hours=24), timedelta(hours=25)}


def test_every_30_minutes_keeps_its_cadence_through_fall_back() -> None:
    got = runs("*/30 * * * *", utc(2024, 10, 26, 23, 0), 8, "Europe/Prague")
    gaps = {b - a for a, b in itertools.pairwise(got)}
    assert gaps == {timedelta(minutes=30)}  # both passes of the repeated hour run
    assert local(got)[1:5] == [
        "10-27 02:00+0200",
        "10-27 02:30+0200",
        "10-27 02:00+0100",
        "10-27 02:30+0100",
    ]


def test_every_30_minutes_through_spring_forward_has_no_duplicates() -> None:
    got = runs("*/30 * * * *", utc(2024, 3, 31, 0, 0), 4, "Europe/Prague")
    assert got == [
        utc(2024, 3, 31, 0, 30),
        utc(2024, 3, 31, 1, 0),
        utc(2024, 3, 31, 1, 30),
        utc(2024, 3, 31, 2, 0),
    ]


def test_hourly_in_new_york_through_both_changes() -> None:
    spring = runs("0 * * * *", utc(2024, 3, 10, 5, 30), 3, "America/New_York")
    assert spring == [utc(2024, 3, 10, 6), utc(2024, 3, 10, 7), utc(2024, 3, 10, 8)]
    fall = runs("0 * * * *", utc(2024, 11, 3, 4, 30), 3, "America/New_York")
    assert fall == [utc(2024, 11, 3, 5), utc(2024, 11, 3, 6), utc(2024, 11, 3, 7)]


def test_result_is_utc_and_input_may_be_in_any_zone() -> None:
    start = datetime(2024, 1, 1, 1, 0, tzinfo=PRAGUE)  # = 00:00 UTC
    assert parse("30 0 * * *").next_after(start) == utc(2024, 1, 1, 0, 30)
    assert parse("30 0 * * *").next_after(start).tzinfo is UTC


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse("* * * * *").next_after(datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute: 61 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day of month: 0 is out of range 1-31"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day of week: 8 is out of range 0-7"),
        ("* * * *", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("5-1 * * * *", "goes backwards"),
        ("x * * * *", "'x' is not a number"),
        ("0 0 30 2 *", "never matches"),
        ("", "5 fields"),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        CronExpression.parse(expression)


def test_unknown_time_zone() -> None:
    with pytest.raises(CronError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")
    with pytest.raises(CronError, match="unknown time zone"):
        parse("* * * * *").next_after(utc(2024, 1, 1), "Nowhere")
    assert zone("Europe/Prague") == PRAGUE
