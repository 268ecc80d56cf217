"""Finding users and counting their messages (the queries every task family shares)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor.errors import PermanentError
from examples.mluvme.clock import day_bounds, local_day
from examples.mluvme.models import Message, User

#: "active users" in the seed: a message in the last 7 days
ACTIVE_WINDOW = timedelta(days=7)


def load_user(db: Session, user_id: int, *, lock: bool = False) -> User:
    """The user, or PermanentError (a deleted user is not worth retrying)."""
    query = select(User).where(User.id == user_id)
    if lock:
        query = query.with_for_update()
    user = db.scalars(query).first()
    if user is None:
        raise PermanentError(f"mluvme user {user_id} does not exist")
    return user


def active_users(db: Session, now: datetime) -> list[User]:
    """Users with a message in the last 7 days, by id."""
    query = select(User).where(User.last_activity_at >= now - ACTIVE_WINDOW).order_by(User.id)
    return list(db.scalars(query))


def messages_between(db: Session, user_id: int, start: datetime, end: datetime) -> list[Message]:
    query = (
        select(Message)
        .where(Message.user_id == user_id, Message.created_at >= start, Message.created_at < end)
        .order_by(Message.created_at)
    )
    return list(db.scalars(query))


def messages_today(db: Session, user: User, now: datetime) -> int:
    """How many messages ``user`` sent on their own calendar's today."""
    start, end = day_bounds(local_day(now, user.timezone), user.timezone)
    query = select(func.count(Message.id)).where(
        Message.user_id == user.id, Message.created_at >= start, Message.created_at < end
    )
    return int(db.scalar(query) or 0)


def today(user: User, now: datetime) -> date:
    return local_day(now, user.timezone)
