"""Retry decisions: exponential backoff with full jitter, pure and unit-testable."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from conveyor.errors import PermanentError, TemporaryError


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failing task is tried again.

    ``attempt`` counts from 1 (the first run). With ``max_retries=3`` a job runs at
    most 4 times. The delay before retry *n* (1-based) is
    ``min(max_delay, base_delay * factor ** (n - 1))``; with ``jitter`` the actual
    delay is drawn uniformly from ``[0, that]`` ("full jitter").
    """

    max_retries: int = 3
    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    give_up_on: tuple[type[BaseException], ...] = ()
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.max_retries <= 100:
            raise ValueError("max_retries must be between 0 and 100")
        if self.base_delay < 0 or self.max_delay < 0 or self.factor < 1:
            raise ValueError("delays must be >= 0 and factor >= 1")

    def backoff(self, retry_number: int) -> float:
        """Delay before retry ``retry_number`` (1-based), before jitter."""
        exponent = max(retry_number - 1, 0)
        # cap the exponent so huge attempt numbers cannot overflow
        raw = self.base_delay * self.factor ** min(exponent, 64)
        return float(min(self.max_delay, raw))

    def decide(self, exc: BaseException, attempt: int) -> RetryDecision:
        if isinstance(exc, (PermanentError, self.give_up_on)):
            return RetryDecision(False, reason="permanent")
        if not isinstance(exc, (TemporaryError, *self.retry_on)):
            return RetryDecision(False, reason="not_retryable")
        if attempt > self.max_retries:
            return RetryDecision(False, reason="exhausted")
        delay = self.backoff(attempt)
        if self.jitter:
            delay *= self.random()
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after > delay:
            delay = float(retry_after)
        return RetryDecision(True, delay=delay, reason="retry")


NO_RETRY = RetryPolicy(max_retries=0)
