"""What a suite run produces: measurements of one metric of one queue, repeated (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.suite.stats import Summary, summarize

CONVEYOR = "conveyor"
CELERY = "celery"
PEERS = ("dramatiq", "rq", "huey", "taskiq", "arq")
QUEUES = (CONVEYOR, CELERY, *PEERS)
#: the I/O workload's variant run on the pool a queue picks itself for an I/O queue
CHOSEN = "chosen pool"


@dataclass
class Measurement:
    """Every repetition of one metric, for one queue in one variant (pool) of a workload."""

    workload: str
    metric: str
    queue: str
    variant: str
    unit: str
    higher_is_better: bool
    values: list[float] = field(default_factory=list)
    #: why the queue could not do it (``values`` is then empty): shown as n/a
    na: str = ""
    #: caveats, e.g. a repetition stopped by its time limit
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.workload, self.metric, self.queue, self.variant)

    def summary(self) -> Summary | None:
        return summarize(self.values) if self.values else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        return cls(**data)


class Results:
    """Measurements by (workload, metric, queue, variant)."""

    def __init__(self, items: Iterable[Measurement] = ()) -> None:
        self._items: dict[tuple[str, str, str, str], Measurement] = {}
        for item in items:
            self.add(item)

    def add(self, item: Measurement) -> Measurement:
        existing = self._items.get(item.key)
        if existing is None:
            self._items[item.key] = item
            return item
        existing.values.extend(item.values)
        existing.notes.extend(n for n in item.notes if n not in existing.notes)
        existing.na = existing.na or item.na
        return existing

    def get(self, workload: str, metric: str, queue: str, variant: str) -> Measurement | None:
        return self._items.get((workload, metric, queue, variant))

    def median(self, workload: str, metric: str, queue: str, variant: str) -> float | None:
        item = self.get(workload, metric, queue, variant)
        summary = item.summary() if item else None
        return summary.median if summary else None

    def all(self) -> list[Measurement]:
        return list(self._items.values())

    def rows(self, workload: str, metric: str) -> list[Measurement]:
        return [m for m in self._items.values() if (m.workload, m.metric) == (workload, metric)]

    def variants(self, workload: str, metric: str) -> list[str]:
        seen: dict[str, None] = {}
        for item in self.rows(workload, metric):
            seen.setdefault(item.variant)
        return list(seen)

    def metrics(self, workload: str) -> list[str]:
        seen: dict[str, None] = {}
        for item in self._items.values():
            if item.workload == workload:
                seen.setdefault(item.metric)
        return list(seen)

    def to_json(self) -> list[dict[str, Any]]:
        return [item.to_json() for item in self._items.values()]

    @classmethod
    def from_json(cls, data: Sequence[dict[str, Any]]) -> Results:
        return cls(Measurement.from_json(item) for item in data)


def best_peer(
    results: Results, workload: str, metric: str, variant: str | None = None
) -> tuple[str, str, float] | None:
    """The best peer figure (queue, variant, median), over one variant or all of them.

    Peers are the other job queues, not conveyor nor its reference, plain Celery.
    """
    best: tuple[str, str, float] | None = None
    for item in results.rows(workload, metric):
        if item.queue not in PEERS or (variant is not None and item.variant != variant):
            continue
        summary = item.summary()
        if summary is None:
            continue
        better = (
            best is None
            or (item.higher_is_better and summary.median > best[2])
            or (not item.higher_is_better and summary.median < best[2])
        )
        if better:
            best = (item.queue, item.variant, summary.median)
    return best


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, or None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return value / reference
