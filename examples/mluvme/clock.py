"""Time in UTC and in a user's time zone: "today", day boundaries, the streak rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime (SQLite returns the stored UTC values naive)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def resolve_now(now: datetime | None) -> datetime:
    """``now`` as aware UTC (naive means UTC), or the current time."""
    return utcnow() if now is None else as_utc(now)


def local_day(moment: datetime, timezone: str) -> date:
    """The calendar day ``moment`` falls on in ``timezone``."""
    return as_utc(moment).astimezone(ZoneInfo(timezone)).date()


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of ``day`` in ``timezone``, in UTC (23 or 25 hours across DST)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def streak_broken(last_activity: datetime | None, now: datetime, timezone: str) -> bool:
    """True when the user let a whole day of their own calendar pass without a message.

    Active today or yesterday (in the user's time zone) keeps the streak: today is
    not over yet.
    """
    if last_activity is None:
        return True
    yesterday = local_day(now, timezone) - timedelta(days=1)
    return local_day(last_activity, timezone) < yesterday
