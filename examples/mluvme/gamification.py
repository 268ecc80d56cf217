"""Gamification tasks (seed: ``backend/tasks/gamification.py``): streaks and their bonuses.

The seed routes only analytics, notifications and maintenance, so these run on
the ``default`` queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from conveyor.policies.retry import RetryPolicy
from conveyor.task import task
from examples.mluvme.clock import resolve_now, streak_broken
from examples.mluvme.db import session
from examples.mluvme.messages import plural, render
from examples.mluvme.models import MILESTONES, StreakMilestoneAward, User
from examples.mluvme.notify import send_telegram
from examples.mluvme.schedules import SCHEDULES
from examples.mluvme.users import load_user

QUEUE = "default"
Milestone = Literal[7, 30, 100, 365]


@task(
    name="mluvme.check_and_reset_streaks",
    queue=QUEUE,
    retry=RetryPolicy(max_retries=3),
    schedule=SCHEDULES["mluvme.check_and_reset_streaks"],
)
def check_and_reset_streaks(now: datetime | None = None) -> dict[str, Any]:
    """Reset the streak of every user who let a whole day of their own calendar pass.

    Runs at 00:05 UTC; "yesterday" is the user's (Tokyo's yesterday ends nine hours
    before London's), and a user who practiced yesterday still has today.
    """
    moment = resolve_now(now)
    reset: list[int] = []
    with session() as db:
        users = db.scalars(select(User).where(User.streak_days > 0).order_by(User.id))
        checked = 0
        for user in users:
            checked += 1
            if streak_broken(user.last_activity_at, moment, user.timezone):
                user.streak_days = 0
                reset.append(user.id)
    return {"checked": checked, "reset": len(reset), "reset_user_ids": reset}


@task(name="mluvme.award_streak_milestone_bonus", queue=QUEUE, retry=RetryPolicy(max_retries=3))
def award_streak_milestone_bonus(
    user_id: int, streak_days: Milestone, now: datetime | None = None
) -> dict[str, Any]:
    """Credit the bonus for reaching a 7/30/100/365-day streak, once per user and milestone.

    The award row's unique (user, milestone) and the balance update share one
    transaction: a second run (a retry, a duplicate submit, two workers at once)
    finds the row, or loses the race on the unique index, and credits nothing.
    """
    moment = resolve_now(now)
    stars = MILESTONES[streak_days]
    try:
        with session() as db:
            user = load_user(db, user_id, lock=True)
            if user.streak_days < streak_days:
                return {"awarded": False, "reason": "streak_too_short", "streak": user.streak_days}
            exists = db.scalars(
                select(StreakMilestoneAward).where(
                    StreakMilestoneAward.user_id == user_id,
                    StreakMilestoneAward.milestone == streak_days,
                )
            ).first()
            if exists is not None:
                return {"awarded": False, "reason": "already_awarded", "stars": user.stars}
            db.add(
                StreakMilestoneAward(
                    user_id=user_id, milestone=streak_days, stars=stars, awarded_at=moment
                )
            )
            user.stars += stars
            db.flush()
            balance = user.stars
            text = render(
                user.locale,
                "milestone",
                days=streak_days,
                days_word=plural(user.locale, "day", streak_days),
                stars=stars,
            )
    except IntegrityError:  # a concurrent run inserted the award first
        return {"awarded": False, "reason": "already_awarded"}
    with session() as db:
        notified = send_telegram(load_user(db, user_id), text)
    return {"awarded": True, "milestone": streak_days, "bonus": stars, "stars": balance, **notified}
