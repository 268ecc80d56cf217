from __future__ import annotations

import pytest

from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.retry import RetryPolicy


def test_exponential_backoff_capped() -> None:
    policy = RetryPolicy(max_retries=10, base_delay=1, factor=2, max_delay=10, jitter=False)
    assert [policy.backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert policy.backoff(10_000) == 10


def test_full_jitter_draws_between_zero_and_the_backoff() -> None:
    policy = RetryPolicy(max_retries=5, base_delay=4, jitter=True, random=lambda: 0.25)
    decision = policy.decide(ValueError("x"), attempt=2)
    assert decision.retry
    assert decision.delay == pytest.approx(0.25 * 8)


def test_exhausted_after_max_retries() -> None:
    policy = RetryPolicy(max_retries=2, jitter=False)
    assert policy.decide(ValueError(), 1).retry
    assert policy.decide(ValueError(), 2).retry
    final = policy.decide(ValueError(), 3)
    assert not final.retry
    assert final.reason == "exhausted"


def test_permanent_and_give_up_on_are_never_retried() -> None:
    policy = RetryPolicy(give_up_on=(KeyError,))
    assert policy.decide(PermanentError("no"), 1).reason == "permanent"
    assert policy.decide(KeyError("k"), 1).reason == "permanent"


def test_retry_on_limits_what_is_retried_but_temporary_always_is() -> None:
    policy = RetryPolicy(retry_on=(ConnectionError,), jitter=False)
    assert policy.decide(ConnectionError(), 1).retry
    assert policy.decide(ValueError(), 1).reason == "not_retryable"
    assert policy.decide(TemporaryError("t"), 1).retry


def test_retry_after_hint_raises_the_delay() -> None:
    policy = RetryPolicy(base_delay=1, jitter=False)
    assert policy.decide(TemporaryError("429", retry_after=30), 1).delay == 30


@pytest.mark.parametrize(
    "kwargs", [{"max_retries": -1}, {"max_retries": 101}, {"base_delay": -1}, {"factor": 0.5}]
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
