"""Server-rendered throughput charts: geometry computed here, SVG drawn by the template."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from conveyor.store.dashboard import ThroughputBucket

WIDTH = 600
HEIGHT = 180
PAD_LEFT = 36
PAD_BOTTOM = 20
PAD_TOP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    bad_y: float
    bad_height: float
    label: str


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A stacked bar chart of succeeded (bottom) and failed (top) jobs per minute."""

    key: str
    title: str
    summary: str
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = PAD_LEFT
    plot_bottom: int = HEIGHT - PAD_BOTTOM


def _nice_max(value: float) -> float:
    """A round number at least ``value`` (1, 2, 5 times 10^n) for the y axis."""
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * exponent:
            return float(step * exponent)
    return float(10 * exponent)


def _fmt(value: float) -> str:
    return f"{value:g}" if value >= 1 or value == 0 else f"{value:.2g}"


def _time(at: datetime, with_date: bool) -> str:
    return at.strftime("%d %b %H:%M" if with_date else "%H:%M")


def throughput_chart(
    key: str, title: str, buckets: list[ThroughputBucket], bucket_minutes: int
) -> Chart:
    """Bars of jobs per minute (averaged over ``bucket_minutes``) for each bucket."""
    rates = [(b.succeeded / bucket_minutes, b.failed / bucket_minutes) for b in buckets]
    top = _nice_max(max((ok + bad for ok, bad in rates), default=0))
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = (WIDTH - PAD_LEFT) / max(len(buckets), 1)
    bottom = HEIGHT - PAD_BOTTOM
    bars = []
    long_range = bucket_minutes > 1
    for index, (bucket, (ok, bad)) in enumerate(zip(buckets, rates, strict=True)):
        ok_h = ok / top * plot_height
        bad_h = bad / top * plot_height
        label = (
            f"{_time(bucket.start, long_range)}: {bucket.succeeded} succeeded, "
            f"{bucket.failed} failed"
        )
        x = PAD_LEFT + index * slot
        bars.append(
            Bar(x, max(slot - 1, 0.5), bottom - ok_h, ok_h, bottom - ok_h - bad_h, bad_h, label)
        )
    y_ticks = [Tick(bottom - plot_height * f, _fmt(top * f)) for f in (0, 0.5, 1)]
    every = max(len(buckets) // 4, 1)
    x_ticks = [
        Tick(PAD_LEFT + i * slot, _time(buckets[i].start, False))
        for i in range(0, len(buckets), every)
    ]
    succeeded = sum(b.succeeded for b in buckets)
    failed = sum(b.failed for b in buckets)
    peak = max((ok + bad for ok, bad in rates), default=0)
    summary = f"{succeeded} succeeded and {failed} failed; peak {_fmt(peak)} jobs per minute"
    return Chart(key, title, summary, bars, y_ticks, x_ticks)
