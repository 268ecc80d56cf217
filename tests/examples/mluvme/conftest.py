"""The mluvme example against PostgreSQL (a fresh database per module), run inline.

Jobs run in-process through ``InlineConveyor`` (memory job store); the
example's own tables live in the PostgreSQL database named by
``CONVEYOR_DATABASE_URL``, and Telegram is a local HTTP server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, text

import examples.mluvme.tasks  # noqa: F401  (registers the mluvme.* tasks)
from conveyor.jobs import Job, JobState
from conveyor.settings import load_settings
from conveyor.testing import InlineConveyor
from examples.mluvme.activity import Activity, record_message
from examples.mluvme.db import create_tables, dispose_engines, session
from examples.mluvme.models import Base, User
from tests.support.catalog import Configure, configure
from tests.support.http import Receiver, http_receiver
from tests.support.services import fresh_postgres_database

__all__ = ["configure"]

TOKEN = "123456:mluvme-test"
SEND = f"/bot{TOKEN}/sendMessage"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        create_tables(load_settings(database_url=url))
        try:
            yield url
        finally:
            dispose_engines()


@pytest.fixture(scope="module")
def inline() -> Iterator[InlineConveyor]:
    conveyor = InlineConveyor()
    yield conveyor
    conveyor.store.close()


@pytest.fixture(scope="module")
def telegram_server() -> Iterator[Receiver]:
    with http_receiver() as receiver:
        yield receiver


@dataclass
class Bot:
    """The example's database plus a conveyor that runs its jobs and a fake Telegram."""

    inline: InlineConveyor
    telegram: Receiver

    def user(self, **fields: Any) -> int:
        """A user with test defaults (ru, Europe/Prague, notifications on); their id."""
        with session() as db:
            count = len(db.scalars(select(User.id)).all())
            number = count + 1
            values: dict[str, Any] = {
                "telegram_id": 1000 + number,
                "username": f"test-user-{number}",
                "locale": "ru",
                "timezone": "Europe/Prague",
                "notifications_enabled": True,
                "streak_reminders": True,
                "challenge_notifications": True,
                "weekly_reports": True,
                "streak_days": 0,
                "longest_streak": 0,
                "stars": 0,
            }
            values.update(fields)
            user = User(**values)
            db.add(user)
            db.flush()
            return user.id

    def message(
        self, user_id: int, at: datetime, text: str = "Dobrý den, jak se máte?", score: int = 90
    ) -> Activity:
        with session() as db:
            return record_message(db, db.get_one(User, user_id), text, score, at)

    def get(self, user_id: int) -> User:
        with session() as db:
            return db.get_one(User, user_id)

    def run(self, task: str, **kwargs: Any) -> Job:
        """Submit ``task`` and return its finished job (which must have succeeded)."""
        job = self.inline.submit(task, **kwargs)
        assert job.state is JobState.SUCCEEDED, job.error
        return job

    def sent(self) -> list[dict[str, Any]]:
        """The Telegram messages received, in order: ``{"chat_id", "text"}``."""
        return [r.json() for r in self.telegram.to(SEND)]


@pytest.fixture
def bot(
    pg_url: str, inline: InlineConveyor, telegram_server: Receiver, configure: Configure
) -> Bot:
    configure(database_url=pg_url, telegram_api_url=telegram_server.url, telegram_bot_token=TOKEN)
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with session() as db:
        db.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    with telegram_server.lock:
        telegram_server.requests.clear()
        telegram_server.responses.clear()
    return Bot(inline, telegram_server)
