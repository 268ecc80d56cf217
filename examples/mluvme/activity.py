"""What the bot does when a user writes: store the message, move the streak, queue follow-ups.

In the seed this is the bot's request handler; here the synthetic data and the
demo task use it. The streak counts days of the user's own calendar: a message
on the day after the last active day extends it, a gap of a whole day starts
it again at 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from conveyor.jobs import Job
from conveyor.submit import SubmitRequest, Submitter
from examples.mluvme.clock import as_utc, local_day
from examples.mluvme.models import MILESTONES, Message, User
from examples.mluvme.notifications import CHALLENGE_NOTIFY_AT
from examples.mluvme.users import messages_today


@dataclass(frozen=True, slots=True)
class Activity:
    user_id: int
    #: when the message was sent (UTC): follow-ups judge "today" by it, not by when they run
    at: datetime
    messages_today: int
    streak_days: int
    #: the milestone this message reached (7, 30, 100, 365), if any
    milestone: int | None


def _next_streak(user: User, at: datetime) -> int:
    if user.last_activity_at is None:
        return 1
    last_day = local_day(user.last_activity_at, user.timezone)
    day = local_day(at, user.timezone)
    if last_day == day:
        return max(user.streak_days, 1)
    if last_day == day - timedelta(days=1):
        return user.streak_days + 1
    if last_day < day:
        return 1
    return user.streak_days  # an older message arriving late changes nothing


def record_message(
    db: Session, user: User, text: str, correctness: int, at: datetime, *, synthetic: bool = False
) -> Activity:
    """Store ``text`` from ``user`` sent ``at`` and update their streak and last activity."""
    at = as_utc(at)
    db.add(
        Message(
            user_id=user.id,
            text=text,
            words=len(text.split()),
            correctness=correctness,
            created_at=at,
            synthetic=synthetic,
        )
    )
    before = user.streak_days
    user.streak_days = _next_streak(user, at)
    user.longest_streak = max(user.longest_streak, user.streak_days)
    last = user.last_activity_at
    if last is None or as_utc(last) < at:
        user.last_activity_at = at
    db.flush()
    reached = user.streak_days if user.streak_days != before else None
    return Activity(
        user_id=user.id,
        at=at,
        messages_today=messages_today(db, user, at),
        streak_days=user.streak_days,
        milestone=reached if reached in MILESTONES else None,
    )


def follow_ups(activity: Activity) -> list[SubmitRequest]:
    """The jobs a new message calls for: challenge progress at 3 or 4, a milestone bonus."""
    requests = []
    if activity.messages_today in CHALLENGE_NOTIFY_AT:
        requests.append(
            SubmitRequest(
                task="mluvme.send_daily_challenge_notification",
                kwargs={"user_id": activity.user_id, "now": activity.at.isoformat()},
            )
        )
    if activity.milestone is not None:
        requests.append(
            SubmitRequest(
                task="mluvme.award_streak_milestone_bonus",
                kwargs={"user_id": activity.user_id, "streak_days": activity.milestone},
            )
        )
    return requests


def submit_follow_ups(submitter: Submitter, activity: Activity) -> list[Job]:
    return [submitter.submit(request) for request in follow_ups(activity)]
