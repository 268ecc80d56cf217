"""`conveyor dlq list | replay | purge`, `conveyor cancel` and `submit --idempotency-key`.

Runs the real commands (click) against an embedded deployment on disk (SQLite
store, filesystem broker); no worker is needed: dead jobs are recorded the way
a worker records them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conveyor.cli import cli
from conveyor.jobs import JobEvent, JobState
from conveyor.settings import load_settings
from conveyor.store.base import JobFilter, JobStore
from conveyor.store.factory import open_store
from conveyor.testing import MemoryStore
from tests.store_contract import make_job

TASK = "tests.fragile"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CONVEYOR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONVEYOR_IMPORTS", "tests.support.tasks")
    monkeypatch.setenv("CONVEYOR_LOG_LEVEL", "ERROR")
    return CliRunner()


@pytest.fixture
def store(runner: CliRunner, tmp_path: Path) -> Iterator[JobStore]:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    opened = open_store(load_settings(data_dir=tmp_path / "var"))
    assert not isinstance(opened, MemoryStore)
    yield opened
    opened.close()


def run(runner: CliRunner, *args: str) -> Any:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def dead_job(store: JobStore, job_id: str, error_type: str = "TemporaryError") -> None:
    store.create_job(make_job(job_id, task=TASK, kwargs={"should_fail": True}))
    store.apply_events(
        [
            JobEvent(job_id, JobState.STARTED, attempt=1),
            JobEvent(job_id, JobState.DEAD, attempt=1, error="x", error_type=error_type),
        ]
    )


def test_dlq_list_replay_and_purge(runner: CliRunner, store: JobStore) -> None:
    dead_job(store, "d1")
    dead_job(store, "d2", error_type="ValueError")
    dead_job(store, "d3")
    listed = json.loads(run(runner, "dlq", "list"))
    assert sorted(e["id"] for e in listed) == ["d1", "d2", "d3"]
    only = json.loads(run(runner, "dlq", "list", "--error-type", "ValueError"))
    assert [e["id"] for e in only] == ["d2"]

    replayed = json.loads(run(runner, "dlq", "replay", "d1", "--kwargs", '{"should_fail": false}'))
    assert replayed["replay_of"] == "d1"
    assert replayed["kwargs"] == {"should_fail": False}
    assert replayed["state"] == "QUEUED"
    again = runner.invoke(cli, ["dlq", "replay", "d1"])
    assert again.exit_code == 1 and "already replayed" in again.output

    bad = runner.invoke(cli, ["dlq", "replay", "d3", "--kwargs", '{"should_fail": "nope"}'])
    assert bad.exit_code == 1 and "invalid arguments" in bad.output

    bulk = json.loads(run(runner, "dlq", "replay", "--all", "--task", TASK))
    assert sorted(r["dead_letter_id"] for r in bulk["replayed"]) == ["d2", "d3"]
    assert len(store.list_jobs(JobFilter(state=JobState.QUEUED), 10).items) == 3

    assert "deleted 1" in run(runner, "dlq", "purge", "d1")
    assert runner.invoke(cli, ["dlq", "purge", "d1"]).exit_code == 1
    assert "deleted 2" in run(runner, "dlq", "purge", "--all", "--yes")
    assert json.loads(run(runner, "dlq", "list")) == []


def test_dlq_replay_needs_an_id_or_all(runner: CliRunner, store: JobStore) -> None:
    assert runner.invoke(cli, ["dlq", "replay"]).exit_code == 2
    assert runner.invoke(cli, ["dlq", "purge", "x", "--all"]).exit_code == 2


def test_cancel_and_idempotent_submit(runner: CliRunner, store: JobStore) -> None:
    args = ["submit", "tests.echo", "--kwargs", '{"value": "a"}', "--idempotency-key", "k1"]
    first = json.loads(run(runner, *args))
    second = json.loads(run(runner, *args))
    assert first["id"] == second["id"]
    cancelled = json.loads(run(runner, "cancel", first["id"]))
    assert cancelled["state"] == "CANCELLED"
    again = runner.invoke(cli, ["cancel", first["id"]])
    assert again.exit_code == 1 and "already CANCELLED" in again.output
    assert runner.invoke(cli, ["cancel", "missing"]).exit_code == 1


def test_job_shows_every_attempt(runner: CliRunner, store: JobStore) -> None:
    dead_job(store, "d9")
    shown = json.loads(run(runner, "job", "d9"))
    assert shown["state"] == "DEAD"
    assert shown["attempt_count"] == 1
    assert [(a["attempt"], a["state"]) for a in shown["attempts"]] == [(1, "DEAD")]
