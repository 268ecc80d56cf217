"""Expanding a list of items into one job each: the engine behind ``fanout``.

See :mod:`conveyor.catalog.fanout` for the primitive users call and
:mod:`conveyor.policies.fanout` for when each job is due.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from conveyor.jobs import utcnow
from conveyor.policies.fanout import QuietHours, due_at, parse_quiet_hours, zone
from conveyor.policies.ratelimit import Rate, parse_rate
from conveyor.submit import SubmitRequest, Submitter
from conveyor.task import TaskSpec, registry

#: the item key naming the recipient's IANA time zone (dropped unless the task takes it)
TIMEZONE_KEY = "timezone"
DEFAULT_BATCH = 100


@dataclass(frozen=True, slots=True)
class FanoutResult:
    count: int = 0
    job_ids: list[str] = field(default_factory=list)
    first_due: datetime | None = None
    last_due: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    spec: TaskSpec
    rate: Rate | None
    quiet: QuietHours | None
    start: datetime
    queue: str | None
    priority: int | None

    def request(self, index: int, item: Mapping[str, Any]) -> SubmitRequest:
        kwargs = dict(item)
        tz_name = kwargs.get(TIMEZONE_KEY)
        if TIMEZONE_KEY not in self.spec.params.model_fields:
            kwargs.pop(TIMEZONE_KEY, None)
        tz = zone(str(tz_name)) if tz_name and self.quiet is not None else None
        due = due_at(self.start, index, self.rate, self.quiet, tz)
        return SubmitRequest(
            task=self.spec.name,
            kwargs=kwargs,
            queue=self.queue,
            priority=self.priority,
            eta=due,
            rate_limit=str(self.rate) if self.rate is not None else None,
        )


def _batches(items: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def expand(
    submitter: Submitter,
    task_name: str,
    items: Iterable[Mapping[str, Any]],
    *,
    rate: str | Rate | None = None,
    quiet_hours: str | QuietHours | None = None,
    queue: str | None = None,
    priority: int | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> FanoutResult:
    """Submit one ``task_name`` job per item, ``rate`` apart; each batch is validated whole.

    Raises ValueError for a malformed rate, quiet hours or time zone, and the
    submit errors (ArgumentsInvalid, SubmitRefused, ...) for a bad item.
    """
    plan = _Plan(
        spec=registry.get(task_name),
        rate=parse_rate(rate) if isinstance(rate, str) else rate,
        quiet=parse_quiet_hours(quiet_hours) if isinstance(quiet_hours, str) else quiet_hours,
        start=utcnow(),
        queue=queue,
        priority=priority,
    )
    ids: list[str] = []
    first: datetime | None = None
    last: datetime | None = None
    for batch in _batches(items, batch_size):
        jobs = [submitter.build(plan.request(len(ids) + n, item)) for n, item in enumerate(batch)]
        for job in jobs:
            stored, _ = submitter.submit_built(job)
            ids.append(stored.id)
            due = stored.scheduled_for or stored.created_at
            first = due if first is None or due < first else first
            last = due if last is None or due > last else last
    return FanoutResult(len(ids), ids, first, last)
