"""When each job of a fan-out is due: evenly spaced at a rate, never in the recipient's quiet hours.

Item ``i`` is due at ``start + i * rate.interval``. When the item has a time
zone and that moment falls inside the quiet hours there (``"22:00-08:00"``),
it is moved to the end of the quiet hours in that zone. Jobs moved together
still start one at a time: every fan-out job carries the rate as its rate limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conveyor.policies.ratelimit import Rate

_QUIET = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window in local time, e.g. 22:00-08:00 (may wrap past midnight)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours must not start and end at the same time")

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_quiet_hours(text: str) -> QuietHours:
    """``"22:00-08:00"`` → QuietHours; ValueError when malformed."""
    match = _QUIET.match(text)
    if match is None:
        raise ValueError(f"invalid quiet hours {text!r}: use HH:MM-HH:MM, e.g. '22:00-08:00'")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    try:
        return QuietHours(time(h1, m1), time(h2, m2))
    except ValueError as exc:
        raise ValueError(f"invalid quiet hours {text!r}: {exc}") from None


def zone(name: str) -> tzinfo:
    """An IANA time zone (``Europe/Prague``); ValueError when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def after_quiet_hours(due: datetime, quiet: QuietHours, tz: tzinfo) -> datetime:
    """``due`` unchanged, or the end of the quiet hours (in ``tz``) it falls into, in UTC."""
    local = due.astimezone(tz)
    if not quiet.contains(local.time()):
        return due
    end = datetime.combine(local.date(), quiet.end, tzinfo=tz)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), quiet.end, tzinfo=tz)
    return end.astimezone(UTC)


def due_at(
    start: datetime,
    index: int,
    rate: Rate | None,
    quiet: QuietHours | None = None,
    tz: tzinfo | None = None,
) -> datetime:
    """When item ``index`` of a fan-out starting at ``start`` is due."""
    due = start + timedelta(seconds=index * rate.interval) if rate is not None else start
    if quiet is not None and tz is not None:
        due = after_quiet_hours(due, quiet, tz)
    return due
