"""`conveyor schedules ...` in-process (click's runner) against a SQLite store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conveyor.cli import cli
from conveyor.store.base import JobFilter
from conveyor.store.sql import SqlStore


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/conveyor.db"
    for name, value in {
        "CONVEYOR_DATA_DIR": str(tmp_path / "var"),
        "CONVEYOR_DATABASE_URL": url,
        "CONVEYOR_BROKER_URL": "memory://",
        "CONVEYOR_RESULT_BACKEND": "cache+memory://",
        "CONVEYOR_IMPORTS": "tests.support.tasks",
    }.items():
        monkeypatch.setenv(name, value)
    # the command's logging setup would replace the test run's own
    monkeypatch.setattr("conveyor.cli.common.configure_logging", lambda settings: None)
    store = SqlStore(url)
    store.migrate()
    store.close()
    return url


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["schedules", *args], catch_exceptions=False)


def ok(*args: str) -> Any:
    """The JSON the command printed (log lines may precede it)."""
    result = run(*args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = next(n for n, line in enumerate(lines) if line in ("{", "[", "[]"))
    return json.loads("\n".join(lines[start:]))


def test_add_list_edit_pause_resume_run_delete(store_url: str) -> None:
    added = ok(
        "add", "hello", "tests.echo", "--cron", "30 2 * * *", "--timezone", "Europe/Prague",
        "--kwargs", '{"value": "hi"}', "--queue", "email", "--priority", "2",
        "--missed", "run_once",
    )  # fmt: skip
    assert (added["cron"], added["timezone"], added["queue"], added["priority"]) == (
        "30 2 * * *",
        "Europe/Prague",
        "email",
        2,
    )
    assert added["missed"] == "run_once" and added["origin"] == "api"
    listed = run("list")
    assert "hello  tests.echo  cron 30 2 * * * (Europe/Prague)  enabled" in listed.output
    assert [s["name"] for s in ok("list", "--json")] == ["hello"]

    edited = ok("edit", "hello", "--interval", "60", "--args", '["x", 2]', "--kwargs", "{}")
    assert (edited["cron"], edited["interval"], edited["args"]) == (None, 60.0, ["x", 2])
    assert edited["version"] == 2
    assert ok("pause", "hello")["enabled"] is False
    assert "paused" in run("list").output
    resumed = ok("resume", "hello")
    assert resumed["enabled"] is True and resumed["next_run_at"]

    job = ok("run", "hello")
    assert (job["task"], job["args"], job["queue"]) == ("tests.echo", ["x", 2], "email")
    store = SqlStore(store_url)
    try:
        assert [j.id for j in store.list_jobs(JobFilter(), 10).items] == [job["id"]]
        schedule = store.get_schedule("hello")
        assert schedule is not None and schedule.last_job_id == job["id"]
    finally:
        store.close()

    deleted = run("delete", "hello")
    assert deleted.exit_code == 0 and "deleted" in deleted.output
    assert ok("list", "--json") == []
    assert run("list").output.strip().endswith("no schedules")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "x", "tests.echo", "--cron", "0 25 * * *"), "hour: 25 is out of range 0-23"),
        (
            ("add", "x", "tests.echo", "--cron", "0 1 * * *", "--timezone", "Nowhere/City"),
            "unknown time zone 'Nowhere/City'",
        ),
        (("add", "x", "tests.echo"), "give exactly one of cron, interval, at"),
        (
            ("add", "x", "tests.echo", "--interval", "5", "--kwargs", '{"times": 2}'),
            "value: Field required",
        ),
        (("add", "x", "no.such.task", "--interval", "5"), "unknown task 'no.such.task'"),
        (("add", "x", "tests.echo", "--interval", "5", "--kwargs", "[1]"), "must be a JSON dict"),
        (("edit", "missing", "--interval", "5"), "no schedule 'missing'"),
        (("edit", "missing"), "nothing to change"),
        (("pause", "missing"), "no schedule 'missing'"),
        (("run", "missing"), "no schedule 'missing'"),
        (("delete", "missing"), "no schedule 'missing'"),
    ],
)
def test_errors_are_one_line_messages(store_url: str, args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output


def test_duplicate_name(store_url: str) -> None:
    ok("add", "x", "tests.echo", "--interval", "5", "--kwargs", '{"value": "v"}')
    result = run("add", "x", "tests.echo", "--interval", "9", "--kwargs", '{"value": "v"}')
    assert result.exit_code == 1
    assert "a schedule named 'x' already exists" in result.output
