"""What happens to a job after a failed attempt: retry, FAILED or DEAD (pure decisions).

* No retry policy (neither on the task nor on the submit): the job is ``FAILED``.
  It is not dead-lettered: a task without a policy is declared fire-and-forget.
* A retry policy that says *retry*: ``RETRYING`` after the computed delay.
* A retry policy that gives up (retries exhausted, ``PermanentError``, an
  exception in ``give_up_on`` or outside ``retry_on``): ``DEAD``, and a
  dead-letter entry is written so the job can be replayed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.jobs import JobState
from conveyor.policies.retry import RetryPolicy

#: the fields of RetryPolicy a submit may override
OVERRIDABLE = ("max_retries", "base_delay", "max_delay")


@dataclass(frozen=True, slots=True)
class Outcome:
    state: JobState
    delay: float = 0.0
    reason: str = ""


def effective_policy(
    task_policy: RetryPolicy | None, override: Mapping[str, Any] | None
) -> RetryPolicy | None:
    """The task's policy with the per-submit override applied (None = no policy)."""
    if not override:
        return task_policy
    values = {key: override[key] for key in OVERRIDABLE if override.get(key) is not None}
    base = task_policy or RetryPolicy()
    return dataclasses.replace(base, **values)


def outcome(policy: RetryPolicy | None, exc: BaseException, attempt: int) -> Outcome:
    """The job's next state after attempt ``attempt`` failed with ``exc``."""
    if policy is None:
        return Outcome(JobState.FAILED, reason="no_retry_policy")
    decision = policy.decide(exc, attempt)
    if decision.retry:
        return Outcome(JobState.RETRYING, decision.delay, decision.reason)
    return Outcome(JobState.DEAD, reason=decision.reason)
