"""Rate limits as a token bucket, decided by a pure function.

Syntax (``@task(rate_limit=...)``, ``"rate_limit"`` in a submit, ``Limit``)::

    "10/m"            10 per minute, evenly spaced (one every 6 s), no burst
    "50/s;burst=5"    50 per second, up to 5 more at once after an idle spell
    "1/h"             units: s (second), m (minute), h (hour)
    "1/2s"            one every 2 seconds (a unit may carry a multiple: "5/10m")

The bucket holds ``burst + 1`` tokens and refills at ``count / period``; in any
window of one period at most ``count + burst`` jobs start. The maths is the
virtual-scheduling form of a token bucket (GCRA): the whole bucket state is one
number, the *theoretical arrival time* ``tat`` of the next token, so it fits in
one Redis key or one SQL row.

A job that finds no token is not refused: it *reserves* the next token (the
bucket moves on) and waits until that token is due. When it comes back it runs
on its reservation without taking another token, so a backlog drains at exactly
the limit and every waiting job is put back once, not once per retry round. A job
that comes back more than ``LATE_GRACE`` after its token was due (its worker was
busy) lets the token go and takes a new one: starts are never bunched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}
_RATE = re.compile(
    r"^\s*(?P<count>\d+)\s*/\s*(?P<mult>\d+)?\s*(?P<unit>[a-z]+)\s*"
    r"(?:;\s*burst\s*=\s*(?P<burst>\d+)\s*)?$"
)
_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,150}$")

#: a reservation this close to now counts as due (clock granularity, publish latency)
DUE_SLACK = 0.005
#: a job back later than this after its reserved token was due gives the token up and takes
#: a new one, so late arrivals (a busy worker, a slow broker) never start in a bunch
LATE_GRACE = 0.05


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` jobs per ``period`` seconds, plus ``burst`` extra after an idle spell."""

    count: int
    period: float
    burst: int = 0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("a rate needs a count of at least 1")
        if self.period <= 0:
            raise ValueError("a rate needs a positive period")
        if self.burst < 0:
            raise ValueError("burst must be >= 0")

    @property
    def interval(self) -> float:
        """Seconds between two tokens."""
        return self.period / self.count

    @property
    def tolerance(self) -> float:
        """How far ahead of its due time a token may be taken (the burst)."""
        return self.burst * self.interval

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}.get(self.period) or _period_text(self.period)
        text = f"{self.count}/{unit}"
        return f"{text};burst={self.burst}" if self.burst else text


def _period_text(period: float) -> str:
    for size, unit in ((3600.0, "h"), (60.0, "m")):
        if period % size == 0:
            return f"{period / size:g}{unit}"
    return f"{period:g}s"


def parse_rate(text: str) -> Rate:
    """``"10/m"``, ``"5/s;burst=2"``, ... → :class:`Rate`; ValueError when malformed."""
    match = _RATE.match(text.lower()) if isinstance(text, str) else None
    if match is None or match["unit"] not in _UNITS:
        raise ValueError(
            f"invalid rate {text!r}: use COUNT/UNIT with UNIT s, m or h, "
            "optionally ';burst=N' (e.g. '10/m', '50/s;burst=5')"
        )
    multiple = int(match["mult"] or 1)
    if multiple < 1:
        raise ValueError(f"invalid rate {text!r}: the period must be positive")
    period = multiple * _UNITS[match["unit"]]
    return Rate(int(match["count"]), period, int(match["burst"] or 0))


@dataclass(frozen=True, slots=True)
class Limit:
    """A named rate limit; every task declaring the same name draws from one bucket.

    ``Limit("telegram", "30/s")`` on several tasks keeps them together under 30/s.
    """

    name: str
    rate: Rate | str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"invalid limit name {self.name!r}: letters, digits and . _ - :")
        if isinstance(self.rate, str):
            object.__setattr__(self, "rate", parse_rate(self.rate))

    @property
    def parsed(self) -> Rate:
        assert isinstance(self.rate, Rate)
        return self.rate

    @property
    def bucket(self) -> str:
        return f"limit:{self.name}"


def task_limit(task: str, value: Limit | Rate | str | None) -> Limit | None:
    """A task's ``rate_limit`` argument as a Limit (a bare rate gets the task's own bucket)."""
    if value is None or isinstance(value, Limit):
        return value
    rate = parse_rate(value) if isinstance(value, str) else value
    return Limit(f"task:{task}", rate)


def submit_limit(task: str, text: str) -> Limit:
    """A per-submit override: jobs of ``task`` submitted with the same rate share a bucket."""
    rate = parse_rate(text)
    return Limit(f"submit:{task}:{rate.count}-{rate.period:g}-{rate.burst}", rate)


@dataclass(frozen=True, slots=True)
class Decision:
    """What one take from the bucket decided.

    ``wait`` is 0 when the job may run now, else the seconds until its token is
    due. ``tat`` is the bucket's new state (None = unchanged); ``reservation``
    the due time to remember for this job (None = nothing to remember; a used
    reservation is forgotten).
    """

    wait: float
    tat: float | None = None
    reservation: float | None = None

    @property
    def allowed(self) -> bool:
        return self.wait <= 0


def decide(rate: Rate, now: float, tat: float | None, reserved: float | None = None) -> Decision:
    """Take a token at ``now`` from a bucket whose state is ``tat`` (None = never used).

    ``reserved`` is the due time this job reserved on an earlier take, if any.
    """
    if reserved is not None and reserved >= now - LATE_GRACE:
        if reserved <= now + DUE_SLACK:
            return Decision(0.0)
        return Decision(reserved - now, reservation=reserved)
    current = max(tat if tat is not None else now, now)
    due = max(now, current - rate.tolerance)
    new_tat = current + rate.interval
    if due <= now + DUE_SLACK:
        return Decision(0.0, tat=new_tat)
    return Decision(due - now, tat=new_tat, reservation=due)
