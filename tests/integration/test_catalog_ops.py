"""reports.generate, maintenance.backup / clean_files / prune_jobs and health.check."""

from __future__ import annotations

import csv
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conveyor.errors import ArgumentsInvalid
from conveyor.jobs import JobState, utcnow
from conveyor.store.sql import SqlStore
from conveyor.testing import InlineConveyor
from tests.store_contract import make_job
from tests.support.catalog import Configure, configure
from tests.support.http import Receiver, http_receiver
from tests.support.services import REDIS_URL, fresh_postgres_database, require

pytestmark = pytest.mark.integration

__all__ = ["configure"]


@pytest.fixture(scope="module")
def inline() -> InlineConveyor:
    return InlineConveyor()


@pytest.fixture
def store_url(tmp_path: Path, configure: Configure) -> Iterator[str]:
    """A migrated SQLite job store that the catalog's settings point at."""
    url = f"sqlite:///{tmp_path}/conveyor.db"
    store = SqlStore(url)
    store.migrate()
    store.close()
    configure(database_url=url, reports_dir=tmp_path / "reports", backup_dir=tmp_path / "bk")
    yield url


# -- reports.generate ----------------------------------------------------------------
def test_table_report_as_html_with_chart(inline: InlineConveyor, store_url: str) -> None:
    job = inline.submit(
        "reports.generate",
        kind="table",
        params={
            "title": "Lessons <per> level",
            "columns": ["level", "lessons"],
            "rows": [["A1", 12], {"level": "B2", "lessons": 30}],
            "chart": {"label": "level", "value": "lessons"},
        },
        format="html",
    )
    assert job.state is JobState.SUCCEEDED, job.error
    path = Path(job.result["path"])
    html = path.read_text()
    assert job.result["size"] == path.stat().st_size
    assert path.parent.name == "reports"
    assert job.id in path.name
    assert "<h1>Lessons &lt;per&gt; level</h1>" in html
    assert "<svg" in html and html.count("<rect") == 2
    assert "<td>B2</td><td>30</td>" in html


def test_jobs_summary_from_the_store_as_csv(inline: InlineConveyor, store_url: str) -> None:
    store = SqlStore(store_url)
    try:
        store.create_job(make_job("a", task="email.send", state=JobState.SUCCEEDED))
        store.create_job(make_job("b", task="email.send", state=JobState.SUCCEEDED))
        store.create_job(make_job("c", task="email.send", state=JobState.FAILED))
        store.create_job(make_job("d", task="sms.send", state=JobState.QUEUED))
    finally:
        store.close()
    job = inline.submit("reports.generate", kind="jobs_summary", format="csv")
    assert job.state is JobState.SUCCEEDED, job.error
    with Path(job.result["path"]).open() as fh:
        rows = list(csv.reader(fh))
    assert rows == [
        ["task", "state", "count"],
        ["email.send", "FAILED", "1"],
        ["email.send", "SUCCEEDED", "2"],
        ["sms.send", "QUEUED", "1"],
        ["email.send", "ALL", "3"],
        ["sms.send", "ALL", "1"],
    ]
    recent = inline.submit(
        "reports.generate", kind="jobs_summary", params={"since": "1d"}, format="csv"
    )
    assert recent.result["rows"] == 0  # make_job's jobs were created in 2024


def test_report_params_are_validated(inline: InlineConveyor, store_url: str) -> None:
    job = inline.submit("reports.generate", kind="table", params={"rows": []})
    assert job.state is JobState.DEAD
    assert "columns" in (job.error or "")
    with pytest.raises(ArgumentsInvalid):
        inline.submit("reports.generate", kind="secrets", params={})


# -- maintenance.backup --------------------------------------------------------------
def test_sqlite_backup_keeps_the_newest(
    inline: InlineConveyor, store_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "app.db"
    with closing(sqlite3.connect(source)) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
        conn.commit()
    paths = []
    for _ in range(3):
        job = inline.submit("maintenance.backup", database_url=f"sqlite:///{source}", keep=2)
        assert job.state is JobState.SUCCEEDED, job.error
        paths.append(Path(job.result["path"]))
    assert sorted(p.name for p in (tmp_path / "bk").iterdir()) == sorted(p.name for p in paths[1:])
    with closing(sqlite3.connect(paths[-1])) as copy:
        assert copy.execute("SELECT count(*) FROM t").fetchone() == (10,)
    assert job.result["removed"] == [paths[0].name]


def test_backup_dest_must_stay_inside_the_backup_dir(
    inline: InlineConveyor, store_url: str
) -> None:
    job = inline.submit("maintenance.backup", dest="../../etc")
    assert job.state is JobState.DEAD
    assert "inside CONVEYOR_BACKUP_DIR" in (job.error or "")


def test_postgres_backup_with_pg_dump(inline: InlineConveyor, store_url: str) -> None:
    with fresh_postgres_database() as url:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE marker (id int)"))
        engine.dispose()
        job = inline.submit("maintenance.backup", database_url=url, dest="pg")
    assert job.state is JobState.SUCCEEDED, job.error
    path = Path(job.result["path"])
    assert path.parent.name == "pg"
    assert path.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    assert job.result["size"] > 0


# -- maintenance.clean_files ---------------------------------------------------------
def _age(path: Path, days: float) -> None:
    when = time.time() - days * 86400
    os.utime(path, (when, when))


def test_clean_files_only_old_matching_files_under_allowed_roots(
    inline: InlineConveyor, tmp_path: Path, configure: Configure
) -> None:
    root = tmp_path / "tmpfiles"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "precious.log"
    outside.write_text("keep me")
    _age(outside, 30)
    files = {
        "old.log": 10,
        "sub/old.log": 10,
        "new.log": 0,
        "old.txt": 10,
    }
    for name, days in files.items():
        (root / name).write_text("x" * 100)
        _age(root / name, days)
    (root / "link.log").symlink_to(outside)
    configure(clean_roots=f"{root},{tmp_path / 'other'}")

    dry = inline.submit(
        "maintenance.clean_files", root=str(root), pattern="**/*.log", older_than="7d", dry_run=True
    )
    assert dry.state is JobState.SUCCEEDED, dry.error
    assert dry.result["deleted"] == 2
    assert (root / "old.log").exists()

    job = inline.submit(
        "maintenance.clean_files", root=str(root), pattern="**/*.log", older_than="7d"
    )
    assert job.state is JobState.SUCCEEDED, job.error
    assert sorted(job.result["files"]) == ["old.log", "sub/old.log"]
    assert job.result["bytes"] == 200
    assert sorted(p.name for p in root.rglob("*")) == ["link.log", "new.log", "old.txt", "sub"]
    assert outside.exists()

    refused = inline.submit(
        "maintenance.clean_files", root=str(tmp_path), pattern="*.log", older_than="1d"
    )
    assert refused.state is JobState.DEAD
    assert "not under an allowed root" in (refused.error or "")
    escaping = inline.submit(
        "maintenance.clean_files", root=str(root / ".." / ".."), pattern="*.log", older_than=1
    )
    assert escaping.state is JobState.DEAD
    assert outside.exists()
    with pytest.raises(ArgumentsInvalid):
        inline.submit(
            "maintenance.clean_files", root=str(root), pattern="../*.log", older_than="1d"
        )


def test_clean_files_refuses_without_configured_roots(
    inline: InlineConveyor, tmp_path: Path, configure: Configure
) -> None:
    configure()
    job = inline.submit("maintenance.clean_files", root=str(tmp_path), pattern="*", older_than=1)
    assert job.state is JobState.DEAD
    assert "CONVEYOR_CLEAN_ROOTS" in (job.error or "")


# -- maintenance.prune_jobs ----------------------------------------------------------
def test_prune_jobs_removes_old_finished_history(inline: InlineConveyor, store_url: str) -> None:
    store = SqlStore(store_url)
    old = utcnow() - timedelta(days=40)
    try:
        store.create_job(make_job("done-old", state=JobState.SUCCEEDED, updated_at=old))
        store.create_job(make_job("dead-old", state=JobState.DEAD, updated_at=old))
        store.create_job(make_job("queued-old", state=JobState.QUEUED, updated_at=old))
        store.create_job(make_job("done-new", state=JobState.SUCCEEDED, updated_at=utcnow()))
        job = inline.submit("maintenance.prune_jobs", older_than="30d")
        assert job.state is JobState.SUCCEEDED, job.error
        assert job.result["deleted"] == 2
        assert store.get_job("done-old") is None
        assert store.get_job("queued-old") is not None
        assert store.get_job("done-new") is not None
    finally:
        store.close()


# -- health.check --------------------------------------------------------------------
@pytest.fixture
def backend() -> Iterator[Receiver]:
    with http_receiver() as receiver:
        receiver.responses["/health/search-index"] = [(503, '{"ok": false}')]
        yield receiver


def test_health_check_reports_each_target(
    inline: InlineConveyor, store_url: str, backend: Receiver, configure: Configure
) -> None:
    require("redis")
    configure(broker_url=f"{REDIS_URL}/9", http_base_url=backend.url)
    job = inline.submit(
        "health.check",
        targets=[
            {"kind": "http", "url": "/health/postgres"},
            {"kind": "http", "url": "/health/search-index", "name": "search"},
            {"kind": "broker"},
            {"kind": "store"},
        ],
    )
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result["healthy"] is False
    outcome = {t["name"]: t["ok"] for t in job.result["targets"]}
    assert outcome == {"/health/postgres": True, "search": False, "broker": True, "store": True}
    assert job.result["targets"][1]["status_code"] == 503


def test_health_check_defaults_and_failing_mode(
    inline: InlineConveyor, store_url: str, configure: Configure
) -> None:
    configure(broker_url="redis://127.0.0.1:1/0")
    job = inline.submit("health.check")
    assert job.state is JobState.SUCCEEDED, job.error
    assert {t["name"]: t["ok"] for t in job.result["targets"]} == {"broker": False, "store": True}
    failing = inline.submit("health.check", targets=[{"kind": "broker"}], fail_if_unhealthy=True)
    assert failing.state is JobState.FAILED
    assert "unhealthy: broker" in (failing.error or "")
