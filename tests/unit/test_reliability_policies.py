"""Every reliability decision, as a pure function: outcome, delays, gate, cancel, unique keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor.errors import PermanentError, SubmitRefused, TemporaryError
from conveyor.gate import RUN, Gate, GateAction, first_refusal
from conveyor.hooks.gate import gate_for
from conveyor.jobs import JobEvent, JobState
from conveyor.policies.cancel import CancelAction, decide_cancel
from conveyor.policies.delay import plan_delay
from conveyor.policies.outcome import effective_policy, outcome
from conveyor.policies.retry import RetryPolicy
from conveyor.settings import SettingsError, load_settings
from conveyor.task import TaskSpec

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_retries=2, base_delay=1.0, factor=2.0, max_delay=10.0, jitter=False)


# -- outcome after a failed attempt ------------------------------------------------
def test_no_policy_fails_without_dead_letter() -> None:
    decided = outcome(None, PermanentError("x"), 1)
    assert decided.state is JobState.FAILED
    assert decided.reason == "no_retry_policy"


def test_retry_while_attempts_remain_with_backoff() -> None:
    assert outcome(POLICY, TemporaryError("x"), 1).state is JobState.RETRYING
    assert outcome(POLICY, TemporaryError("x"), 1).delay == 1.0
    assert outcome(POLICY, TemporaryError("x"), 2).delay == 2.0


def test_exhausted_retries_are_dead() -> None:
    decided = outcome(POLICY, TemporaryError("x"), 3)
    assert (decided.state, decided.reason) == (JobState.DEAD, "exhausted")


def test_permanent_error_is_dead_at_once() -> None:
    decided = outcome(POLICY, PermanentError("x"), 1)
    assert (decided.state, decided.reason) == (JobState.DEAD, "permanent")


def test_give_up_on_and_not_retryable_are_dead() -> None:
    policy = RetryPolicy(retry_on=(TimeoutError,), give_up_on=(KeyError,))
    assert outcome(policy, KeyError("k"), 1).reason == "permanent"
    assert outcome(policy, ValueError("v"), 1).reason == "not_retryable"
    assert outcome(policy, TimeoutError(), 1).state is JobState.RETRYING
    assert outcome(policy, TemporaryError("t"), 1).state is JobState.RETRYING


def test_full_jitter_stays_within_backoff() -> None:
    policy = RetryPolicy(base_delay=4.0, jitter=True, random=lambda: 0.25)
    assert outcome(policy, TemporaryError("x"), 1).delay == 1.0


def test_retry_after_raises_the_delay() -> None:
    decided = outcome(POLICY, TemporaryError("x", retry_after=7), 1)
    assert decided.delay == 7.0


def test_submit_override_applies_over_task_policy() -> None:
    policy = effective_policy(POLICY, {"max_retries": 0, "base_delay": 0.5})
    assert policy is not None
    assert (policy.max_retries, policy.base_delay, policy.max_delay) == (0, 0.5, 10.0)
    assert outcome(policy, TemporaryError("x"), 1).state is JobState.DEAD


def test_override_gives_a_policy_to_a_task_without_one() -> None:
    policy = effective_policy(None, {"max_retries": 1})
    assert policy is not None and policy.max_retries == 1
    assert effective_policy(None, None) is None
    assert effective_policy(POLICY, {}) is POLICY


def test_override_is_checked() -> None:
    with pytest.raises(ValueError):
        effective_policy(None, {"max_retries": 101})


# -- delays ------------------------------------------------------------------------
def test_no_delay_runs_now() -> None:
    assert plan_delay(NOW, None, None, threshold=300, horizon=1000).due is None


def test_short_delay_goes_to_the_broker() -> None:
    plan = plan_delay(NOW, 300, None, threshold=300, horizon=10_000)
    assert plan.due == NOW + timedelta(seconds=300)
    assert not plan.hold


def test_long_delay_is_held_in_the_store() -> None:
    plan = plan_delay(NOW, 301, None, threshold=300, horizon=10_000)
    assert plan.hold and plan.due == NOW + timedelta(seconds=301)


def test_eta_in_the_past_runs_now() -> None:
    plan = plan_delay(NOW, None, NOW - timedelta(days=3), threshold=300, horizon=10)
    assert plan.due is None and not plan.hold


def test_naive_eta_is_utc() -> None:
    plan = plan_delay(NOW, None, datetime(2025, 3, 1, 13, 0), threshold=300, horizon=1e6)
    assert plan.due == NOW + timedelta(hours=1) and plan.hold


def test_eta_beyond_the_horizon_is_refused() -> None:
    with pytest.raises(SubmitRefused) as caught:
        plan_delay(NOW, None, NOW + timedelta(days=2), threshold=300, horizon=86400)
    assert caught.value.field == "eta"
    with pytest.raises(SubmitRefused) as caught:
        plan_delay(NOW, 86401, None, threshold=300, horizon=86400)
    assert caught.value.field == "countdown"


def test_countdown_and_eta_together_are_refused() -> None:
    with pytest.raises(SubmitRefused):
        plan_delay(NOW, 1, NOW, threshold=300, horizon=1e6)


def test_threshold_must_stay_below_visibility_timeout() -> None:
    with pytest.raises(SettingsError, match="delay_threshold"):
        load_settings(delay_threshold=3600, visibility_timeout=3600)
    assert load_settings(delay_threshold=59, visibility_timeout=60).delay_threshold == 59


# -- the gate before a run -----------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (None, RUN),
        (JobState.QUEUED, RUN),
        (JobState.RETRYING, RUN),
        (JobState.STARTED, RUN),  # a redelivery after a crash runs again
        (JobState.CANCELLED, Gate.skip("cancelled")),
        (JobState.SUCCEEDED, Gate.skip("already_succeeded")),
        (JobState.DEAD, Gate.skip("already_dead")),
        (JobState.FAILED, Gate.skip("already_failed")),
    ],
)
def test_gate_for_state(state: JobState | None, expected: Gate) -> None:
    assert gate_for(state) == expected


def test_first_refusal_wins() -> None:
    defer = Gate.defer(3, "rate_limited")
    assert first_refusal([RUN, defer, Gate.skip("x")]) is defer
    assert first_refusal([RUN, RUN]) is RUN
    assert defer.action is GateAction.DEFER and defer.countdown == 3
    with pytest.raises(ValueError):
        Gate.defer(-1, "no")


# -- cancellation -------------------------------------------------------------------
@pytest.mark.parametrize("state", [JobState.SCHEDULED, JobState.QUEUED, JobState.RETRYING])
def test_waiting_jobs_are_cancelled(state: JobState) -> None:
    assert decide_cancel(state, terminate=False).action is CancelAction.CANCEL


def test_running_job_needs_terminate() -> None:
    refused = decide_cancel(JobState.STARTED, terminate=False)
    assert (refused.action, refused.code) == (CancelAction.REFUSE, "job_running")
    assert "terminate" in refused.message
    assert decide_cancel(JobState.STARTED, terminate=True).action is CancelAction.TERMINATE


@pytest.mark.parametrize("state", sorted(s for s in JobState if s.is_final))
def test_finished_jobs_cannot_be_cancelled(state: JobState) -> None:
    decision = decide_cancel(state, terminate=True)
    assert (decision.action, decision.code) == (CancelAction.REFUSE, "job_finished")


# -- unique keys and final states ------------------------------------------------------
def _fn(user_id: int, text: str) -> None:
    return None


def test_unique_key_uses_only_the_chosen_arguments() -> None:
    spec = TaskSpec("t.unique", _fn, unique=True, unique_on=("user_id",))
    assert spec.unique_key({"user_id": 1, "text": "a"}) == spec.unique_key(
        {"user_id": 1, "text": "b"}
    )
    assert spec.unique_key({"user_id": 1, "text": "a"}) != spec.unique_key(
        {"user_id": 2, "text": "a"}
    )
    every = TaskSpec("t.unique_all", _fn, unique=True)
    assert every.unique_key({"user_id": 1, "text": "a"}) != every.unique_key(
        {"user_id": 1, "text": "b"}
    )
    assert TaskSpec("t.plain", _fn).unique_key({"user_id": 1, "text": "a"}) is None


def test_unique_on_must_name_parameters() -> None:
    with pytest.raises(TypeError, match="unknown parameters"):
        TaskSpec("t.bad", _fn, unique=True, unique_on=("nope",))


@pytest.mark.parametrize("state", list(JobState))
def test_final_states_free_the_unique_slot(state: JobState) -> None:
    changes = JobEvent("j", state).changes()
    assert ("unique_key" in changes) is state.is_final
