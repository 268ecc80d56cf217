"""A fresh PostgreSQL database per module (job store + mentorhub tables), an
InlineConveyor on it, aiosmtpd as the mail server, and helpers to add rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from conveyor.catalog.database import engine_for
from conveyor.local import use_submitter
from conveyor.submit import Submitter
from conveyor.testing import InlineConveyor
from examples.mentorhub.models import Base, MentorSession, User, create_tables
from tests.examples.support import example_database, inline_conveyor
from tests.support.catalog import Configure, configure
from tests.support.smtp import Mailbox, smtp_server

__all__ = ["configure"]

IMPORTS = ["examples.mentorhub.tasks"]


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with example_database(create_tables) as url:
        yield url


@pytest.fixture(scope="module")
def inline(database_url: str) -> Iterator[InlineConveyor]:
    with inline_conveyor(database_url, IMPORTS) as conveyor:
        yield conveyor


@dataclass
class Hub:
    inline: InlineConveyor
    mailbox: Mailbox
    engine: Engine
    #: records jobs like a real API process: far-off ``eta`` jobs stay SCHEDULED
    held: Submitter

    def add(self, *rows: Any) -> None:
        with Session(self.engine, expire_on_commit=False) as db, db.begin():
            db.add_all(rows)

    def user(self, name: str, role: str = "student", **fields: Any) -> User:
        values = {"email": f"{name}@example.org", "username": name, "full_name": name.title()}
        user = User(**{**values, **fields}, role=role)
        self.add(user)
        return user

    def session(self, mentor: User, student: User, at: datetime, **fields: Any) -> MentorSession:
        row = MentorSession(mentor_id=mentor.id, student_id=student.id, scheduled_at=at, **fields)
        self.add(row)
        return row

    def reload(self, model: type[Base], key: object) -> Any:
        with Session(self.engine) as db:
            return db.get(model, key)


@pytest.fixture
def hub(
    inline: InlineConveyor, database_url: str, configure: Configure, tmp_path: Path
) -> Iterator[Hub]:
    engine = engine_for(database_url)
    with engine.begin() as conn:  # every test starts from empty tables
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    with smtp_server(tmp_path) as mailbox:
        configure(
            database_url=database_url,
            smtp_host="127.0.0.1",
            smtp_port=mailbox.port,
            smtp_from="mentorhub@example.org",
        )
        held = Submitter(inline.settings, inline.store, inline.app)
        with use_submitter(inline.submitter):
            yield Hub(inline, mailbox, engine, held)
