"""SYNTHETIC data for the example: invented users and messages, never real people.

Every row has ``synthetic = true``; users are named ``synthetic-user-N`` and
have Telegram ids from 9 000 000 000 up (outside the range Telegram hands out
to people today), so nothing here can be mistaken for, or delivered to, a real
account. The same ``seed`` and ``now`` always give the same data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from examples.mluvme.activity import Activity, record_message
from examples.mluvme.clock import local_day, resolve_now
from examples.mluvme.models import LOCALES, User

SYNTHETIC_PREFIX = "synthetic-user-"
SYNTHETIC_TELEGRAM_BASE = 9_000_000_000
#: several offsets from UTC, both sides of it, some with DST
TIMEZONES = (
    "Europe/Prague",
    "Europe/Kyiv",
    "Europe/Moscow",
    "Asia/Almaty",
    "Asia/Tokyo",
    "America/New_York",
    "America/Los_Angeles",
    "UTC",
)
PHRASES = (
    "Dobrý den, jak se máte?",
    "Dnes jsem byl v obchodě a koupil jsem chleba.",
    "Mám rád českou kuchyni, hlavně svíčkovou.",
    "Zítra pojedu vlakem do Brna.",
    "Učím se česky každý den.",
    "Můj oblíbený film je Pelíšky.",
    "Kde je nejbližší zastávka tramvaje?",
    "V létě chci navštívit Český Krumlov.",
    "Pracuji jako programátor v Praze.",
    "Promiňte, nerozumím.",
)


@dataclass(frozen=True, slots=True)
class Generated:
    users: int
    messages: int


def synthetic_username(number: int) -> str:
    return f"{SYNTHETIC_PREFIX}{number}"


def has_synthetic_data(db: Session) -> bool:
    return bool(db.scalar(select(func.count(User.id)).where(User.synthetic.is_(True))))


def generate(
    db: Session, *, users: int = 24, days: int = 21, seed: int = 42, now: datetime | None = None
) -> Generated:
    """Insert ``users`` synthetic users with ``days`` of message history up to ``now``.

    Some write every day (long streaks), some now and then, some stopped a week
    or more ago; about one in six has notifications off.
    """
    rng = random.Random(seed)
    moment = resolve_now(now)
    count = 0
    for number in range(1, users + 1):
        user = User(
            telegram_id=SYNTHETIC_TELEGRAM_BASE + number,
            username=synthetic_username(number),
            first_name=f"Synthetic {number}",
            locale=LOCALES[number % len(LOCALES)],
            timezone=TIMEZONES[number % len(TIMEZONES)],
            notifications_enabled=number % 6 != 0,
            streak_reminders=True,
            challenge_notifications=True,
            weekly_reports=True,
            streak_days=0,
            longest_streak=0,
            stars=0,
            created_at=moment - timedelta(days=days + 1),
            synthetic=True,
        )
        db.add(user)
        db.flush()
        count += _history(db, user, rng, moment, days, habit=number % 4)
    return Generated(users, count)


def _history(
    db: Session, user: User, rng: random.Random, now: datetime, days: int, habit: int
) -> int:
    """Messages on past days of the user's calendar; ``habit`` 0 daily, 1-2 often, 3 lapsed."""
    zone = ZoneInfo(user.timezone)
    today = local_day(now, user.timezone)
    count = 0
    for back in range(days, 0, -1):
        if habit == 3 and back < 9:
            break  # stopped more than a week ago: no reminders for them
        if habit in (1, 2) and rng.random() < 0.3:
            continue
        day = today - timedelta(days=back)
        for _ in range(rng.randint(1, 6)):
            local = datetime.combine(day, time(rng.randint(7, 22), rng.randint(0, 59)), zone)
            record_message(
                db, user, rng.choice(PHRASES), rng.randint(40, 100), local, synthetic=True
            )
            count += 1
    return count


def add_activity(db: Session, rng: random.Random, now: datetime, messages: int) -> list[Activity]:
    """``messages`` new synthetic messages from random synthetic users, sent ``now``."""
    users = list(db.scalars(select(User).where(User.synthetic.is_(True)).order_by(User.id)))
    if not users:
        return []
    return [
        record_message(
            db,
            rng.choice(users),
            rng.choice(PHRASES),
            rng.randint(40, 100),
            now,
            synthetic=True,
        )
        for _ in range(messages)
    ]
