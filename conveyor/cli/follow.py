"""``conveyor job ID --follow``: a progress bar fed by the job's progress reports."""

from __future__ import annotations

import time
from typing import Any

import click

from conveyor.jobs import Job
from conveyor.store.base import JobStore

POLL_SECONDS = 0.2


class ProgressView:
    """A click progress bar created once the job reports a total, advanced to ``done``."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.bar: Any = None
        self.shown = 0
        self.message: str | None = None

    def update(self, job: Job) -> None:
        report = job.progress or {}
        total, done = report.get("total"), int(report.get("done") or 0)
        if self.bar is None and total:
            self.bar = click.progressbar(length=int(total), label=job.task, show_pos=True)
            self.bar.__enter__()
        message = report.get("message")
        if self.bar is not None:
            self.bar.label = f"{job.task}: {message}" if message else job.task
            if done > self.shown:
                self.bar.update(done - self.shown)
                self.shown = done
        elif message and message != self.message:
            click.echo(f"{job.task}: {done} {message}", err=True)
        self.message = message

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def follow(store: JobStore, job: Job, timeout: float | None = None) -> Job:
    """Poll ``job`` until it is final (or ``timeout``), drawing its progress on stderr."""
    view = ProgressView(job.id)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while not job.state.is_final:
            view.update(job)
            if deadline is not None and time.monotonic() >= deadline:
                raise click.ClickException(f"job {job.id} not finished after {timeout:g}s")
            time.sleep(POLL_SECONDS)
            job = store.get_job(job.id) or job
        view.update(job)
    finally:
        view.close()
    return job
