"""Rate limits as a token bucket, decided by a pure function.

Syntax (``@task(rate_limit=...)``, ``"rate_limit"`` in a submit, ``Limit``)::

    "10/m"            10 per minute, evenly spaced (one every 6 s), no burst
    "50/s;burst=5"    50 per second, up to 5 more at once after an idle spell
    "1/h"             units: s (second), m (minute), h (hour)
    "1/2s"            one every 2 seconds (a unit may carry a multiple: "5/10m")

Two mechanisms, one decision:

* **Schedule** (a token bucket in its virtual-scheduling form, GCRA): the bucket
  state is one number, the *theoretical arrival time* ``tat`` of the next token.
  A job that finds no token is not refused: it *reserves* the next one (the
  bucket moves on) and waits until it is due, so a backlog is spread evenly and
  every waiting job is put back about once, not once per retry round.
* **Guard** (a log of the starts in the last period): a job that is due (on
  time or late — its worker was busy) starts only while fewer than
  ``count + burst`` jobs started in the last ``period`` seconds; otherwise it
  waits until enough of them leave the window, keeping its turn. (The guard
  window is ``GUARD_MARGIN`` = 30 ms longer than the period, so the recorded
  start times hold the bound even when a busy worker records them a little late.)

So in any window of one period at most ``count + burst`` jobs start, however
late jobs come back, and a late job never wastes its token (the mean rate stays
at the limit).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}
_RATE = re.compile(
    r"^\s*(?P<count>\d+)\s*/\s*(?P<mult>\d+)?\s*(?P<unit>[a-z]+)\s*"
    r"(?:;\s*burst\s*=\s*(?P<burst>\d+)\s*)?$"
)
_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,150}$")

#: a reservation this close to now counts as due (clock granularity, publish latency)
DUE_SLACK = 0.005
#: shortest wait when the start log is full (the next start frees up at least this late)
MIN_WAIT = 0.01
#: the guard counts starts over ``period + GUARD_MARGIN``: a job's recorded start lags the
#: decision by a few ms on a busy machine, and that lag must not let one more in a window
#: (costs at most 3 % of the rate for a per-second limit, nothing measurable for longer ones)
GUARD_MARGIN = 0.03


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
    def guard_window(self) -> float:
        """The span the start log covers."""
        return self.period + GUARD_MARGIN

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
    """What one take decided.

    ``wait`` is 0 when the job may start now (its start is then logged), else
    the seconds to wait. ``tat`` is the bucket's new state (None = unchanged);
    ``reservation`` the time this job comes back with priority (None = nothing
    to remember; a used reservation is forgotten).
    """

    wait: float
    tat: float | None = None
    reservation: float | None = None

    @property
    def allowed(self) -> bool:
        return self.wait <= 0


def _window_wait(rate: Rate, now: float, recent: Iterable[float]) -> float:
    """0 when the start log has room now, else the seconds until it has."""
    cap = rate.count + rate.burst
    span = rate.guard_window
    window = sorted(at for at in recent if at > now - span)
    if len(window) < cap:
        return 0.0
    return max(window[len(window) - cap] + span - now, MIN_WAIT)


def decide(
    rate: Rate,
    now: float,
    tat: float | None,
    reserved: float | None = None,
    recent: Iterable[float] = (),
) -> Decision:
    """Take a token at ``now`` for one job.

    ``tat`` is the bucket state (None = never used), ``reserved`` the time this
    job reserved on an earlier take (if any), ``recent`` the start times logged
    for the bucket (older entries are ignored).
    """
    new_tat = None
    if reserved is None:
        current = max(tat if tat is not None else now, now)
        due = max(now, current - rate.tolerance)
        new_tat = current + rate.interval
        if due > now + DUE_SLACK:
            return Decision(due - now, tat=new_tat, reservation=due)
    elif reserved > now + DUE_SLACK:
        return Decision(reserved - now, reservation=reserved)
    wait = _window_wait(rate, now, recent)
    if wait > 0:
        return Decision(wait, tat=new_tat, reservation=now + wait)
    return Decision(0.0, tat=new_tat)
