"""Replaying and purging dead letters (shared by the HTTP API and the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from conveyor.jobs import Job, utcnow
from conveyor.store.base import JobStore
from conveyor.store.reliability import DeadLetter, DeadLetterFilter
from conveyor.submit import SubmitRequest, Submitter

log = structlog.get_logger("conveyor.deadletters")

PAGE = 200


class DeadLetterError(Exception):
    def __init__(self, code: str, message: str, entry: DeadLetter | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.entry = code, message, entry


def replay_request(entry: DeadLetter, kwargs: Mapping[str, Any] | None = None) -> SubmitRequest:
    """The submit that runs ``entry`` again; ``kwargs`` are merged over the original ones."""
    return SubmitRequest(
        task=entry.task,
        args=tuple(entry.args),
        kwargs={**entry.kwargs, **(kwargs or {})},
        queue=entry.queue,
        priority=entry.priority,
        retry=entry.retry,
        replay_of=entry.job_id,
    )


def replay(
    store: JobStore, submitter: Submitter, job_id: str, kwargs: Mapping[str, Any] | None = None
) -> Job:
    """Submit the dead job ``job_id`` again as a new job linked to it (``replay_of``).

    The new job is validated like any submit (ArgumentsInvalid/SubmitRefused on bad
    ``kwargs``). An entry is replayed at most once (``already_replayed``).
    """
    entry = store.get_dead_letter(job_id)
    if entry is None:
        raise DeadLetterError("dead_letter_not_found", f"no dead letter {job_id!r}")
    job = submitter.build(replay_request(entry, kwargs))
    if not store.mark_dead_letter_replayed(entry.job_id, job.id, utcnow()):
        raise DeadLetterError(
            "already_replayed",
            f"dead letter {job_id!r} was already replayed as job {entry.replayed_job_id}",
            entry,
        )
    try:
        stored, created = submitter.submit_built(job)
    except Exception:
        store.unmark_dead_letter_replayed(entry.job_id)
        raise
    if not created:  # a unique task's job was already active: link the entry to it
        store.unmark_dead_letter_replayed(entry.job_id)
        store.mark_dead_letter_replayed(entry.job_id, stored.id, utcnow())
    log.info("dead_letter_replayed", dead_job_id=entry.job_id, job_id=stored.id, task=entry.task)
    return stored


@dataclass
class BulkReplay:
    replayed: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def replay_matching(
    store: JobStore, submitter: Submitter, flt: DeadLetterFilter, limit: int
) -> BulkReplay:
    """Replay up to ``limit`` entries matching ``flt`` that were not replayed yet."""
    pending = DeadLetterFilter(
        task=flt.task,
        queue=flt.queue,
        error_type=flt.error_type,
        since=flt.since,
        until=flt.until,
        replayed=False,
        reason=flt.reason,
        text=flt.text,
    )
    out = BulkReplay()
    entries = store.list_dead_letters(pending, limit).items
    for entry in entries:
        try:
            job = replay(store, submitter, entry.job_id)
        except Exception as exc:  # report each failure, keep replaying the others
            out.failed.append((entry.job_id, str(exc)))
            continue
        out.replayed.append((entry.job_id, job.id))
    return out


def purge(store: JobStore, flt: DeadLetterFilter) -> int:
    """Delete every entry matching ``flt``; returns how many."""
    removed = 0
    while True:
        entries = store.list_dead_letters(flt, PAGE).items
        if not entries:
            return removed
        removed += sum(store.delete_dead_letter(entry.job_id) for entry in entries)
