"""What a person may do to a job from its page: ONE list of actions.

Each action declares the scope it needs, the jobs it applies to and what it
does. The job page shows a button for each action that applies, only to
viewers with the scope; the server checks both again on POST. Features that
add job operations (cancel, retry now, ...) append their action here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conveyor.jobs import Job
from conveyor.submit import SubmitRequest, Submitter


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where to go after an action: the job to show, and a notice for the person."""

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


def _replay(submitter: Submitter, job: Job) -> Outcome:
    copy = submitter.submit(
        SubmitRequest(
            task=job.task,
            args=job.args,
            kwargs=dict(job.kwargs),
            queue=job.queue,
            priority=job.priority,
        )
    )
    return Outcome(copy.id, "replayed")


ACTIONS: tuple[JobAction, ...] = (
    JobAction(
        name="replay",
        label="Replay as a new job",
        scope="write",
        applies=lambda job: job.state.is_final,
        run=_replay,
        description="Submit the same task with the same arguments again (validated anew).",
    ),
)


def find_action(name: str) -> JobAction | None:
    return next((action for action in ACTIONS if action.name == name), None)
