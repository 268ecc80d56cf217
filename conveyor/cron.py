"""Cron expressions (``m h dom mon dow``) and their next due time in an IANA time zone.

Pure functions, no I/O. Fields follow the cron standard: ``*``, ``*/n``, ``a-b``,
``a-b/n``, lists ``a,b``; month and weekday names (``jan``, ``mon``); weekday 0
or 7 = Sunday; when both day-of-month and day-of-week are restricted, a day
matches if either does. Aliases: ``@yearly``, ``@monthly``, ``@weekly``,
``@daily``, ``@hourly``.

Daylight-saving changes, evaluated on the zone's wall clock:

* a wall time that does not exist (spring forward, e.g. 02:30 in Prague on the
  last Sunday of March) runs once, shifted forward by the gap (03:30 summer time);
* a wall time that occurs twice (fall back) runs once, at its first occurrence —
  unless the hour field is ``*``, where it runs in both hours so an "every N
  minutes" schedule keeps its cadence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: How far ahead a match is searched before an expression is declared impossible.
SEARCH_DAYS = 366 * 5

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class CronError(ValueError):
    """An invalid cron expression or time zone; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, MONTHS, 1),
    _Field("day of week", 0, 7, WEEKDAYS, 0),
)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises CronError when it is unknown."""
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        message = f"unknown time zone {name!r} (use an IANA name like 'Europe/Prague')"
        raise CronError(message) from exc


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    if not name or name != name.strip():
        raise ValueError(name)
    return ZoneInfo(name)


def _value(text: str, spec: _Field) -> int:
    lowered = text.lower()
    if lowered in spec.names:
        return spec.names.index(lowered) + spec.name_base
    if not text.isdigit():
        raise CronError(f"{spec.name}: {text!r} is not a number")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise CronError(f"{spec.name}: {value} is out of range {spec.low}-{spec.high}")
    return value


def _range(part: str, spec: _Field) -> tuple[int, int]:
    if part == "*":
        return spec.low, spec.high
    if "-" in part:
        first, _, last = part.partition("-")
        low, high = _value(first, spec), _value(last, spec)
        if low > high:
            raise CronError(f"{spec.name}: range {part!r} goes backwards")
        return low, high
    value = _value(part, spec)
    return value, value


def _parse_part(part: str, spec: _Field) -> set[int]:
    base, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"{spec.name}: step {step_text!r} must be a positive number")
        step = int(step_text)
    low, high = _range(base, spec)
    if slash and base != "*" and "-" not in base:
        high = spec.high  # "5/15" means 5, 20, 35, 50
    return set(range(low, high + 1, step))


def _parse_field(text: str, spec: _Field) -> frozenset[int]:
    if not text:
        raise CronError(f"{spec.name}: empty field")
    values: set[int] = set()
    for part in text.split(","):
        values |= _parse_part(part, spec)
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed cron expression. Build with :meth:`parse`."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday … 6 = Sunday (Python's weekday())
    day_restricted: bool
    weekday_restricted: bool
    hour_wildcard: bool

    @classmethod
    def parse(cls, expression: str) -> CronExpression:
        text = " ".join(expression.split())
        fields = ALIASES.get(text.lower(), text).split(" ")
        if len(fields) != 5:
            raise CronError(
                "a cron expression has 5 fields 'minute hour day-of-month month day-of-week', "
                f"got {len(fields)} in {expression!r}"
            )
        minute, hour, dom, month, dow = (
            _parse_field(text, spec) for text, spec in zip(fields, FIELDS, strict=True)
        )
        parsed = cls(
            expression=text,
            minutes=tuple(sorted(minute)),
            hours=tuple(sorted(hour)),
            days=dom,
            months=month,
            weekdays=frozenset((d - 1) % 7 for d in dow),  # cron 0/7 = Sunday → 6
            day_restricted=fields[2] != "*",
            weekday_restricted=fields[4] != "*",
            hour_wildcard=fields[1] == "*",
        )
        parsed._check_possible()
        return parsed

    def _check_possible(self) -> None:
        start = date(2000, 1, 1)  # a leap year, then every weekday/day combination within 5 years
        if next(self._days(start, start + timedelta(days=SEARCH_DAYS)), None) is None:
            raise CronError(f"cron expression {self.expression!r} never matches a date")

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = day.weekday() in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return dom or dow
        return dom and dow

    def _days(self, first: date, last: date) -> Iterator[date]:
        day = first
        while day <= last:
            if self.matches_day(day):
                yield day
            day += timedelta(days=1)

    def _walls(self, start: datetime) -> Iterator[datetime]:
        """Matching wall-clock times (naive) at or after ``start``, in order."""
        for day in self._days(start.date(), start.date() + timedelta(days=SEARCH_DAYS)):
            for hour in self.hours:
                for minute in self.minutes:
                    wall = datetime.combine(day, time(hour, minute))
                    if wall >= start:
                        yield wall

    def _instants(self, wall: datetime, tz: ZoneInfo) -> list[datetime]:
        """The instants (UTC) at which ``wall`` is due in ``tz`` (see the module docs)."""
        first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
        if second > first and self.hour_wildcard:
            return [first, second]  # repeated hour, every-hour schedule: both
        return [first]  # normal, nonexistent (fold=0 is shifted forward) or first occurrence

    def next_after(self, after: datetime, tz: ZoneInfo | str = "UTC") -> datetime:
        """The first due instant strictly after ``after`` (aware), as an aware UTC datetime."""
        if after.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        tz = zone(tz) if isinstance(tz, str) else tz
        after = after.astimezone(UTC)
        local = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0, fold=0)
        # start an hour early: in a repeated hour ``after`` may sit in the second pass;
        # shifted (nonexistent) times are out of wall order, so look a few hours past a hit
        found: list[datetime] = []
        horizon: datetime | None = None
        for wall in self._walls(local - timedelta(hours=1)):
            if horizon is not None and wall > horizon:
                break
            found += [i for i in self._instants(wall, tz) if i > after]
            if horizon is None and found:
                horizon = wall + timedelta(hours=3)
        if found:
            return min(found)
        raise CronError(f"cron expression {self.expression!r} has no time after {after}")


def parse(expression: str) -> CronExpression:
    return CronExpression.parse(expression)
