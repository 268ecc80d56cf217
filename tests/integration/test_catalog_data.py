"""data.import_csv and maintenance.purge_rows / analyze / refresh_views on SQLite and PostgreSQL,
including names that try to smuggle SQL in (refused, nothing runs)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    insert,
    inspect,
    select,
    text,
)

from conveyor.catalog import data
from conveyor.context import JobContext, running
from conveyor.errors import ArgumentsInvalid
from conveyor.jobs import JobEvent, JobState
from conveyor.testing import InlineConveyor
from tests.support.http import http_receiver
from tests.support.services import fresh_postgres_database

pytestmark = pytest.mark.integration

metadata = MetaData()
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("email", String(40), nullable=False, unique=True),
    Column("age", Integer, nullable=True),
    Column("active", Boolean, nullable=True),
    Column("joined", DateTime, nullable=True),
)
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("created_at", DateTime, nullable=False),
)
tokens = Table(  # no primary key: purged in one statement
    "tokens",
    metadata,
    Column("token", String(40), nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

CSV = """id,email,age,active,joined
1,ann@example.org,31,true,2024-01-02T10:00:00
2,bob@example.org,abc,false,
3,cid@example.org,,yes,2024-03-04
4,ann@example.org,40,no,
5,dan@example.org,22
6,"eve, the ""second""@example.org",55,1,2024-05-06T07:08:09
"""


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db')}/target.db"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP MATERIALIZED VIEW IF EXISTS event_counts"))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def inline() -> InlineConveyor:
    return InlineConveyor()


def count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# -- data.import_csv -----------------------------------------------------------------
def test_import_reports_bad_rows_and_keeps_good_batches(
    inline: InlineConveyor, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "users.csv"
    source.write_text(CSV)
    job = inline.submit(
        "data.import_csv", source=str(source), table="users", batch_size=2, database_url=db_url
    )
    assert job.state is JobState.SUCCEEDED, job.error
    result = job.result
    assert result["inserted"] == 3
    assert result["rejected"] == 3
    assert result["rows"] == 6
    reasons = {e["line"]: e["reason"] for e in result["errors"]}
    assert set(reasons) == {3, 5, 6}
    assert reasons[3].startswith("age:")
    assert "expected 5 fields" in reasons[6]
    assert reasons[5]  # duplicate email, refused by the database: reported per row
    with engine.connect() as conn:
        rows = conn.execute(select(users).order_by(users.c.id)).all()
    assert [r.id for r in rows] == [1, 3, 6]
    assert rows[0].active is True and rows[0].joined == datetime(2024, 1, 2, 10)
    assert rows[1].age is None
    assert rows[2].email == 'eve, the "second"@example.org'


def test_import_with_mapping_from_url_and_progress(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    body = "E-mail;Years;Ignored;Key\n" + "".join(
        f"u{i}@example.org;{20 + i};x;{i}\n" for i in range(7)
    )
    seen: list[JobEvent] = []
    with http_receiver() as receiver:
        receiver.responses["/export/users.csv"] = [(200, body)]
        job = JobContext(job_id="job-import", task="data.import_csv", attempt=1, report=seen.append)
        with running(job):
            result = data.import_csv(
                source=receiver.url + "/export/users.csv",
                table="users",
                mapping={"Key": "id", "E-mail": "email", "Years": "age"},
                batch_size=3,
                database_url=db_url,
                delimiter=";",
            )
    assert result["inserted"] == 7
    assert result["batches"] == 3
    assert [e.progress["done"] for e in seen if e.progress] == [3, 6, 7]
    with engine.connect() as conn:
        assert conn.execute(select(users.c.age).where(users.c.id == 6)).scalar_one() == 26


@pytest.mark.parametrize(
    ("table", "mapping", "message"),
    [
        ("users; DROP TABLE users; --", None, "unknown table"),
        ('users" ; DROP TABLE users; --', None, "unknown table"),
        ("nope", None, "unknown table"),
        ("users", {"email": "email; DROP TABLE users"}, "has no column"),
        ("users", {"missing": "email"}, "CSV has no column"),
    ],
)
def test_import_refuses_names_not_in_the_schema(
    inline: InlineConveyor,
    engine: Engine,
    db_url: str,
    tmp_path: Path,
    table: str,
    mapping: dict[str, str] | None,
    message: str,
) -> None:
    source = tmp_path / "u.csv"
    source.write_text("id,email\n1,a@example.org\n")
    job = inline.submit(
        "data.import_csv", source=str(source), table=table, mapping=mapping, database_url=db_url
    )
    assert job.state is JobState.DEAD
    assert job.attempts == 1
    assert message in (job.error or "")
    assert inspect(engine).has_table("users")
    assert count(engine, users) == 0


# -- maintenance.purge_rows ----------------------------------------------------------
def _fill_events(engine: Engine) -> None:
    now = datetime.now()
    old = [{"name": f"old{i}", "created_at": now - timedelta(days=400 + i)} for i in range(25)]
    new = [{"name": f"new{i}", "created_at": now - timedelta(days=i)} for i in range(5)]
    with engine.begin() as conn:
        conn.execute(insert(events), old + new)


def test_purge_rows_deletes_old_rows_in_batches(
    inline: InlineConveyor, engine: Engine, db_url: str
) -> None:
    _fill_events(engine)
    job = inline.submit(
        "maintenance.purge_rows",
        table="events",
        timestamp_column="created_at",
        older_than="365d",
        batch_size=10,
        database_url=db_url,
    )
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result["deleted"] == 25
    with engine.connect() as conn:
        names = sorted(conn.execute(select(events.c.name)).scalars())
    assert names == [f"new{i}" for i in range(5)]


def test_purge_rows_without_primary_key(
    inline: InlineConveyor, engine: Engine, db_url: str
) -> None:
    now = datetime.now()
    with engine.begin() as conn:
        conn.execute(
            insert(tokens),
            [
                {"token": "expired", "expires_at": now - timedelta(hours=3)},
                {"token": "valid", "expires_at": now + timedelta(hours=3)},
            ],
        )
    job = inline.submit(
        "maintenance.purge_rows",
        table="tokens",
        timestamp_column="expires_at",
        older_than="PT1H",
        database_url=db_url,
    )
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result["deleted"] == 1
    assert count(engine, tokens) == 1


@pytest.mark.parametrize(
    ("table", "column", "message"),
    [
        ("events; DROP TABLE events; --", "created_at", "unknown table"),
        ("events WHERE 1=1; --", "created_at", "unknown table"),
        ("public.events; DROP TABLE events", "created_at", "unknown table"),
        ("events", "created_at < now() OR 1=1 --", "has no column"),
        ("events", "name", "not a date/time column"),
    ],
)
def test_purge_rows_refuses_injection_through_names(
    inline: InlineConveyor, engine: Engine, db_url: str, table: str, column: str, message: str
) -> None:
    _fill_events(engine)
    job = inline.submit(
        "maintenance.purge_rows",
        table=table,
        timestamp_column=column,
        older_than=1,
        database_url=db_url,
    )
    assert job.state is JobState.DEAD
    assert job.attempts == 1
    assert message in (job.error or "")
    assert count(engine, events) == 30


def test_purge_rows_validates_the_duration(inline: InlineConveyor, db_url: str) -> None:
    with pytest.raises(ArgumentsInvalid) as caught:
        inline.submit(
            "maintenance.purge_rows",
            table="events",
            timestamp_column="created_at",
            older_than="a year",
            database_url=db_url,
        )
    assert [tuple(e["loc"]) for e in caught.value.errors] == [("older_than",)]


# -- maintenance.analyze / refresh_views ---------------------------------------------
def test_analyze_and_vacuum(inline: InlineConveyor, engine: Engine, db_url: str) -> None:
    _fill_events(engine)
    job = inline.submit(
        "maintenance.analyze", tables=["events", "users"], vacuum=True, database_url=db_url
    )
    assert job.state is JobState.SUCCEEDED, job.error
    assert len(job.result["statements"]) >= 2
    everything = inline.submit("maintenance.analyze", database_url=db_url)
    assert everything.state is JobState.SUCCEEDED, everything.error
    refused = inline.submit(
        "maintenance.analyze", tables=["events; DROP TABLE users"], database_url=db_url
    )
    assert refused.state is JobState.DEAD
    assert "unknown table" in (refused.error or "")
    assert inspect(engine).has_table("users")


def test_refresh_materialized_views(inline: InlineConveyor, engine: Engine, db_url: str) -> None:
    if engine.dialect.name != "postgresql":
        job = inline.submit("maintenance.refresh_views", names=["x"], database_url=db_url)
        assert job.state is JobState.DEAD
        assert "PostgreSQL" in (job.error or "")
        return
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE MATERIALIZED VIEW event_counts AS "
                "SELECT name, count(*) AS n FROM events GROUP BY name"
            )
        )
        conn.execute(text("CREATE UNIQUE INDEX event_counts_name ON event_counts (name)"))
    _fill_events(engine)
    job = inline.submit(
        "maintenance.refresh_views", names=["event_counts"], concurrently=True, database_url=db_url
    )
    assert job.state is JobState.SUCCEEDED, job.error
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_counts")).scalar_one() == 30
    refused = inline.submit(
        "maintenance.refresh_views",
        names=["event_counts; DROP TABLE events"],
        database_url=db_url,
    )
    assert refused.state is JobState.DEAD
    assert "unknown materialized view" in (refused.error or "")
    assert count(engine, events) == 30
