"""Commands that submit and inspect jobs: submit, job."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime

import click

from conveyor.cli.common import Env, echo_json, parse_json, settings_or_exit
from conveyor.cli.follow import follow as follow_job
from conveyor.errors import ArgumentsInvalid, BrokerUnavailable, SubmitRefused, TaskNotFound
from conveyor.jobs import Job, JobState
from conveyor.submit import SubmitRequest


def _wait(env: Env, job: Job, timeout: float) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = env.store.get_job(job.id)
        if current is not None and current.state.is_final:
            return current
        time.sleep(0.2)
    raise click.ClickException(f"job {job.id} not finished after {timeout:g}s")


@click.command()
@click.argument("task_name", metavar="TASK")
@click.option("--args", "args_json", default=None, help="Positional arguments, a JSON list.")
@click.option("--kwargs", "kwargs_json", default=None, help="Keyword arguments, a JSON object.")
@click.option("--queue", default=None, help="Queue to use instead of the task's.")
@click.option("--priority", type=click.IntRange(0, 9), default=None, help="0 (low) to 9.")
@click.option("--countdown", type=float, default=None, help="Run after this many seconds.")
@click.option("--eta", type=click.DateTime(), default=None, help="Run at this time (UTC).")
@click.option("--idempotency-key", default=None, help="Submit at most once per key (TTL).")
@click.option(
    "--max-retries", type=click.IntRange(0, 100), default=None, help="Override the retry policy."
)
@click.option("--wait", is_flag=True, help="Wait until the job is finished and print it.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="For --wait.")
def submit(
    task_name: str,
    args_json: str | None,
    kwargs_json: str | None,
    queue: str | None,
    priority: int | None,
    countdown: float | None,
    eta: datetime | None,
    idempotency_key: str | None,
    max_retries: int | None,
    wait: bool,
    timeout: float,
) -> None:
    """Submit a job, e.g. `conveyor submit webhook.post --kwargs '{"url": …, "payload": {}}'`.

    Validates the arguments against the task's parameters first; nothing is
    enqueued when they are wrong. With --wait, exits 1 unless the job succeeds.
    """
    env = Env(settings_or_exit())
    request = SubmitRequest(
        task=task_name,
        args=parse_json(args_json, "--args", list),
        kwargs=parse_json(kwargs_json, "--kwargs", dict),
        queue=queue,
        priority=priority,
        countdown=countdown,
        eta=eta,
        retry={"max_retries": max_retries} if max_retries is not None else None,
        idempotency_key=idempotency_key,
    )
    try:
        job = env.submitter.submit(request)
    except ArgumentsInvalid as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors)
        raise click.ClickException(f"{exc}: {details}") from None
    except (TaskNotFound, SubmitRefused, BrokerUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    if wait:
        job = _wait(env, job, timeout)
    echo_json(job.to_dict())
    if wait and job.state is not JobState.SUCCEEDED:
        raise SystemExit(1)


@click.command()
@click.argument("job_id")
@click.option("--follow", is_flag=True, help="Show a progress bar until the job is final.")
@click.option("--timeout", type=float, default=None, help="For --follow: give up after seconds.")
def job(job_id: str, follow: bool, timeout: float | None) -> None:
    """Show one job as JSON: state, result, error, attempts, progress, timestamps.

    With --follow, draws the job's progress reports as a progress bar (on stderr)
    until it is final, then prints it.
    """
    env = Env(settings_or_exit())
    store = env.migrated_store()
    found = store.get_job(job_id)
    if found is None:
        raise click.ClickException(f"no job {job_id}")
    if follow:
        found = follow_job(store, found, timeout)
    attempts = [dataclasses.asdict(a) for a in store.list_attempts([job_id])[job_id]]
    echo_json({**found.to_dict(), "attempt_count": found.attempts, "attempts": attempts})
