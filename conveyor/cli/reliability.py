"""Commands for what did not go to plan: `dlq list | replay | purge` and `cancel`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from conveyor.cancellation import CancelError, cancel_job
from conveyor.cli.common import Env, echo_json, parse_json, settings_or_exit
from conveyor.deadletters import DeadLetterError, purge, replay, replay_matching
from conveyor.errors import ArgumentsInvalid, BrokerUnavailable, SubmitRefused, TaskNotFound
from conveyor.store.reliability import DeadLetter, DeadLetterFilter

_REFUSED = (ArgumentsInvalid, SubmitRefused, TaskNotFound, BrokerUnavailable, DeadLetterError)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _filter_options(fn: Any) -> Any:
    options = [
        click.option("--task", default=None, help="Only this task."),
        click.option("--queue", default=None, help="Only this queue."),
        click.option("--error-type", default=None, help="Only this error type, e.g. ValueError."),
        click.option("--since", type=click.DateTime(), default=None, help="Died at/after (UTC)."),
        click.option("--until", type=click.DateTime(), default=None, help="Died before (UTC)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _filter(
    task: str | None,
    queue: str | None,
    error_type: str | None,
    since: datetime | None,
    until: datetime | None,
) -> DeadLetterFilter:
    return DeadLetterFilter(task, queue, error_type, _utc(since), _utc(until))


def _row(entry: DeadLetter) -> dict[str, Any]:
    return {
        "id": entry.job_id,
        "task": entry.task,
        "queue": entry.queue,
        "error_type": entry.error_type,
        "error": entry.error,
        "reason": entry.reason,
        "attempts": entry.attempts,
        "dead_at": entry.dead_at.isoformat(),
        "replayed_job_id": entry.replayed_job_id,
        "kwargs": dict(entry.kwargs),
        "args": list(entry.args),
    }


@click.group()
def dlq() -> None:
    """The dead-letter queue: jobs whose retries are exhausted (or that gave up)."""


@dlq.command("list")
@_filter_options
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def dlq_list(
    task: str | None,
    queue: str | None,
    error_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> None:
    """List dead letters, newest first, as JSON."""
    env = Env(settings_or_exit())
    flt = _filter(task, queue, error_type, since, until)
    page = env.migrated_store().list_dead_letters(flt, limit)
    echo_json([_row(entry) for entry in page.items])


@dlq.command("replay")
@click.argument("dead_letter_id", required=False)
@click.option("--kwargs", "kwargs_json", default=None, help="Corrected kwargs (JSON), merged.")
@click.option("--all", "replay_all", is_flag=True, help="Replay every entry matching the filter.")
@_filter_options
@click.option("--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True)
def dlq_replay(
    dead_letter_id: str | None,
    kwargs_json: str | None,
    replay_all: bool,
    task: str | None,
    queue: str | None,
    error_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> None:
    """Run dead jobs again as new jobs: one by id, or all matching a filter with --all."""
    env = Env(settings_or_exit())
    store = env.migrated_store()
    if replay_all == (dead_letter_id is not None):
        raise click.UsageError("give a DEAD_LETTER_ID or --all (with optional filters)")
    if dead_letter_id is not None:
        kwargs = parse_json(kwargs_json, "--kwargs", dict) if kwargs_json else None
        try:
            job = replay(store, env.submitter, dead_letter_id, kwargs)
        except _REFUSED as exc:
            raise click.ClickException(str(exc)) from None
        echo_json(job.to_dict())
        return
    result = replay_matching(
        store, env.submitter, _filter(task, queue, error_type, since, until), limit
    )
    echo_json(
        {
            "replayed": [{"dead_letter_id": d, "job_id": j} for d, j in result.replayed],
            "failed": [{"dead_letter_id": d, "error": e} for d, e in result.failed],
        }
    )
    if result.failed:
        raise SystemExit(1)


@dlq.command("purge")
@click.argument("dead_letter_id", required=False)
@click.option("--all", "purge_all", is_flag=True, help="Delete every entry matching the filter.")
@_filter_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dlq_purge(
    dead_letter_id: str | None,
    purge_all: bool,
    task: str | None,
    queue: str | None,
    error_type: str | None,
    since: datetime | None,
    until: datetime | None,
    yes: bool,
) -> None:
    """Delete dead letters: one by id, or all matching a filter with --all."""
    env = Env(settings_or_exit())
    store = env.migrated_store()
    if purge_all == (dead_letter_id is not None):
        raise click.UsageError("give a DEAD_LETTER_ID or --all (with optional filters)")
    if dead_letter_id is not None:
        if not store.delete_dead_letter(dead_letter_id):
            raise click.ClickException(f"no dead letter {dead_letter_id}")
        click.echo("deleted 1 dead letter")
        return
    if not yes:
        click.confirm("delete every matching dead letter?", abort=True)
    removed = purge(store, _filter(task, queue, error_type, since, until))
    click.echo(f"deleted {removed} dead letter(s)")


@click.command()
@click.argument("job_id")
@click.option("--terminate", is_flag=True, help="Also kill the job if it is running.")
def cancel(job_id: str, terminate: bool) -> None:
    """Cancel a job: a scheduled or queued job never runs; --terminate kills a running one."""
    env = Env(settings_or_exit())
    store = env.migrated_store()
    try:
        job = cancel_job(store, env.app, job_id, terminate=terminate)
    except CancelError as exc:
        raise click.ClickException(exc.message) from None
    echo_json(job.to_dict())
