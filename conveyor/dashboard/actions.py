"""What a person may do to a job from its page: ONE list of actions.

Each action declares the scope it needs, the jobs it applies to and what it
does. The job page shows a button for each action that applies, only to
viewers with the scope; the server checks both again on POST. Features that
add job operations append their action here; each calls the same domain
function as the HTTP API (cancellation.cancel_job, retry_now.retry_now, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conveyor.cancellation import CancelError, cancel_job
from conveyor.jobs import Job, JobState
from conveyor.retry_now import RetryNowError, can_retry_now, retry_now
from conveyor.submit import SubmitRequest, Submitter


class ActionRefused(Exception):
    """The action does not apply (any more): ``status`` 404 or 409, and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where to go after an action: the job to show, and what happened (a notice key)."""

    job_id: str
    notice: str


@dataclass(frozen=True, slots=True)
class JobAction:
    name: str
    label: str
    scope: str
    applies: Callable[[Job], bool]
    run: Callable[[Submitter, Job], Outcome]
    description: str = ""
    #: shown on the button's form: ask before doing something that cannot be undone
    confirm: str = ""
    #: CSS class of the button (``danger`` for destructive actions)
    style: str = ""


#: What each notice key says on the job page after the action.
NOTICES = {
    "cancelled": "The job was cancelled; it will not run.",
    "terminated": "The job was cancelled and the process running it was told to stop.",
    "run_now": "The job was sent to its queue to run now.",
}


def _replay(submitter: Submitter, job: Job) -> Outcome:
    copy = submitter.submit(
        SubmitRequest(
            task=job.task,
            args=job.args,
            kwargs=dict(job.kwargs),
            queue=job.queue,
            priority=job.priority,
            replay_of=job.id,
        )
    )
    return Outcome(copy.id, "replayed")


def _cancel(submitter: Submitter, job: Job, terminate: bool) -> Outcome:
    try:
        cancel_job(submitter.store, submitter.app, job.id, terminate=terminate)
    except CancelError as exc:
        raise ActionRefused(404 if exc.code == "job_not_found" else 409, exc.message) from None
    return Outcome(job.id, "terminated" if terminate else "cancelled")


def _retry_now(submitter: Submitter, job: Job) -> Outcome:
    try:
        retry_now(submitter.store, submitter, job.id)
    except RetryNowError as exc:
        raise ActionRefused(404 if exc.code == "job_not_found" else 409, exc.message) from None
    return Outcome(job.id, "run_now")


ACTIONS: tuple[JobAction, ...] = (
    JobAction(
        name="replay",
        label="Replay as a new job",
        scope="write",
        applies=lambda job: job.state.is_final,
        run=_replay,
        description="Submit the same task with the same arguments again (validated anew).",
    ),
    JobAction(
        name="retry_now",
        label="Run now",
        scope="write",
        applies=can_retry_now,
        run=_retry_now,
        description="Send the waiting job (scheduled, or retrying after a delay) to run now.",
    ),
    JobAction(
        name="cancel",
        label="Cancel",
        scope="write",
        applies=lambda job: not job.state.is_final and job.state is not JobState.STARTED,
        run=lambda submitter, job: _cancel(submitter, job, terminate=False),
        description="The job will never run, even if workers restart.",
        confirm="Cancel this job? It will not run.",
        style="danger",
    ),
    JobAction(
        name="terminate",
        label="Cancel and stop it",
        scope="write",
        applies=lambda job: job.state is JobState.STARTED,
        run=lambda submitter, job: _cancel(submitter, job, terminate=True),
        description="Cancel the running job by killing the process that runs it "
        "(its work may be left half done).",
        confirm="Kill the process running this job? Its work may be left half done.",
        style="danger",
    ),
)


def find_action(name: str) -> JobAction | None:
    return next((action for action in ACTIONS if action.name == name), None)
