"""Where a delayed job waits: in the broker (short delays) or in the job store (long ones).

Brokers are bad at holding messages for long: Redis redelivers an unacknowledged
ETA message after its visibility timeout (so it runs twice), and a worker keeps
every ETA message in memory. So a delay up to ``delay_threshold`` goes to the
broker as a Celery ETA task, and a longer one is stored as ``SCHEDULED`` and
released to the broker by the scheduler when it is due (``conveyor.delays``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from conveyor.errors import SubmitRefused


@dataclass(frozen=True, slots=True)
class DelayPlan:
    #: when the job is due (None = now)
    due: datetime | None = None
    #: True = hold it in the store as SCHEDULED; False = publish it now (with ``due`` as ETA)
    hold: bool = False


def due_time(now: datetime, countdown: float | None, eta: datetime | None) -> datetime | None:
    """When a job asked for with ``countdown`` or ``eta`` is due (None = now)."""
    if countdown is not None and eta is not None:
        raise SubmitRefused("give either countdown or eta, not both", field="countdown")
    if countdown is not None:
        if countdown < 0:
            raise SubmitRefused("countdown must be >= 0 seconds", field="countdown")
        return now + timedelta(seconds=countdown) if countdown > 0 else None
    if eta is not None:
        eta = eta if eta.tzinfo else eta.replace(tzinfo=UTC)
        return eta if eta > now else None  # an eta in the past runs now
    return None


def plan_delay(
    now: datetime,
    countdown: float | None,
    eta: datetime | None,
    *,
    threshold: float,
    horizon: float,
) -> DelayPlan:
    """Decide where a job waits; refuses a due time beyond ``horizon`` seconds from now."""
    due = due_time(now, countdown, eta)
    if due is None:
        return DelayPlan()
    wait = (due - now).total_seconds()
    if wait > horizon:
        field = "countdown" if countdown is not None else "eta"
        raise SubmitRefused(
            f"the job would be due in {wait:.0f}s, beyond the horizon of {horizon:.0f}s",
            field=field,
        )
    return DelayPlan(due=due, hold=wait > threshold)
