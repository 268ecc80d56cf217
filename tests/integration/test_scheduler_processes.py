"""Real `conveyor scheduler` processes against one store and broker.

On the embedded default (filesystem broker + SQLite, lease row in SQL) and on
PostgreSQL + Redis (lease in Redis): two schedulers with a 1-second schedule, the
leader killed with SIGKILL mid-run — every period gets exactly one job, at most
one lease TTL of periods is skipped, none is duplicated; and a live edit through
the API changes the cadence of the next runs without a restart.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api import create_api
from conveyor.jobs import utcnow
from conveyor.keys import create_key
from conveyor.lease import StoreLease, open_lease
from conveyor.schedule_manager import ScheduleManager
from conveyor.scheduler import LEASE_NAME
from conveyor.schedules import ScheduleSpec
from conveyor.store.base import JobFilter
from conveyor.store.schedules import ScheduleRun
from tests.support.services import REDIS_URL, flush_redis, fresh_postgres_database
from tests.support.stack import Client, Stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

LEASE_TTL = 3.0


@dataclass
class Deployment:
    stack: Stack
    client: Client

    def schedulers(self, count: int) -> list[subprocess.Popen[bytes]]:
        """Start ``count`` schedulers and wait until they run and one of them leads."""
        started: list[tuple[subprocess.Popen[bytes], Path]] = []
        for _ in range(count):
            proc = self.stack.start("scheduler", log_name="scheduler")
            started.append(
                (proc, self.stack.data_dir / f"scheduler-{len(self.stack.procs) - 1}.log")
            )

        def logs() -> list[str]:
            return [
                path.read_text(errors="replace") if path.exists() else "" for _, path in started
            ]

        self.wait_for("the schedulers", lambda: all("scheduler_started" in t for t in logs()))
        self.wait_for("a leader", lambda: any("scheduler_leader_elected" in t for t in logs()))
        return [proc for proc, _ in started]

    def runs(self, name: str) -> list[ScheduleRun]:
        return self.client.store.list_schedule_runs(name)

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = 40) -> None:
        wait_until(condition, timeout, what, detail=lambda: self.stack.logs()[-4000:])


@pytest.fixture(scope="module", params=["embedded", "redis+postgres"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    data_dir = tmp_path_factory.mktemp(request.param.replace("+", "_"))
    base = {"CONVEYOR_SCHEDULER_LEASE_TTL": str(LEASE_TTL)}
    if request.param == "embedded":
        yield from _deploy(Stack(data_dir, base))
        return
    flush_redis(4)
    flush_redis(5)
    with fresh_postgres_database() as db_url:
        overrides = {
            **base,
            "CONVEYOR_BROKER_URL": f"{REDIS_URL}/4",
            "CONVEYOR_RESULT_BACKEND": f"{REDIS_URL}/5",
            "CONVEYOR_DATABASE_URL": db_url,
        }
        yield from _deploy(Stack(data_dir, overrides))


def _deploy(stack: Stack) -> Iterator[Deployment]:
    result = stack.conveyor("migrate")
    assert result.returncode == 0, result.stderr
    client = Client(stack)
    try:
        yield Deployment(stack, client)
    finally:
        stack.stop_all()
        client.close()


def _pid(holder: str) -> int:
    return int(holder.split(":")[1])


def test_killing_the_leader_loses_at_most_one_ttl_and_duplicates_nothing(
    deployment: Deployment,
) -> None:
    client = deployment.client
    name = f"pulse-{uuid.uuid4().hex[:8]}"
    procs = {p.pid: p for p in deployment.schedulers(2)}
    manager = ScheduleManager(client.store, client.submitter)
    manager.create(name, ScheduleSpec(task="tests.echo", kwargs={"value": name}, interval=1))
    deployment.wait_for("3 runs", lambda: len(deployment.runs(name)) >= 3)

    leader = deployment.runs(name)[-1].claimed_by
    assert _pid(leader) in procs
    os.killpg(_pid(leader), signal.SIGKILL)
    procs.pop(_pid(leader)).wait()
    killed_after = len(deployment.runs(name))

    def survivor_ran_three() -> bool:
        return sum(r.claimed_by != leader for r in deployment.runs(name)) >= 3

    deployment.wait_for("the survivor's runs", survivor_ran_three)
    (survivor,) = procs.values()
    assert survivor.poll() is None
    survivor_holder = deployment.runs(name)[-1].claimed_by
    assert _pid(survivor_holder) == survivor.pid
    probe = open_lease(client.settings, client.store, LEASE_NAME, "probe")
    assert probe.current_holder() == survivor_holder
    in_store = client.store.lease_holder(LEASE_NAME, utcnow())
    assert in_store == (survivor_holder if isinstance(probe, StoreLease) else None)
    for proc in procs.values():
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    assert probe.current_holder() is None  # a graceful stop releases the lease at once

    runs = deployment.runs(name)
    holders = [r.claimed_by for r in runs]
    assert holders[: killed_after - 1] == [leader] * (killed_after - 1)
    assert set(holders[killed_after:]) == {holders[-1]} and holders[-1] != leader
    # every job was claimed first: never more jobs than periods, each period once; a claim
    # may lack its job (or its link to it) only where the leader was killed in between
    submitted = client.store.list_jobs(JobFilter(task="tests.echo"), 1000).items
    mine = {j.id for j in submitted if j.kwargs.get("value") == name}
    linked = [r.job_id for r in runs if r.job_id is not None]
    assert len(set(linked)) == len(linked) and set(linked) <= mine
    assert len(runs) - 1 <= len(mine) <= len(runs)
    assert all(r.claimed_by == leader for r in runs if r.job_id is None)
    assert len(linked) >= len(runs) - 1
    # the periods are 1 s apart; one gap (the takeover) may skip up to a lease TTL of them
    gaps = [(b.due_at - a.due_at).total_seconds() for a, b in itertools.pairwise(runs)]
    assert all(gap >= 1 and gap == int(gap) for gap in gaps), gaps
    long_gaps = [gap for gap in gaps if gap > 1]
    assert len(long_gaps) <= 1 and all(gap <= LEASE_TTL + 2 for gap in long_gaps), gaps


def test_an_interval_edited_through_the_api_changes_the_next_runs(
    deployment: Deployment,
) -> None:
    client = deployment.client
    name = f"edit-{uuid.uuid4().hex[:8]}"
    api = TestClient(create_api(client.settings, client.store, client.submitter))
    key, _ = create_key(client.store, f"test-{name}", ["write"])
    headers = {"Authorization": f"Bearer {key}"}
    body = {"name": name, "task": "tests.echo", "kwargs": {"value": name}, "interval": 1}
    (proc,) = deployment.schedulers(1)
    assert api.post("/api/v1/schedules", json=body, headers=headers).status_code == 201
    deployment.wait_for("2 runs", lambda: len(deployment.runs(name)) >= 2)

    response = api.patch(f"/api/v1/schedules/{name}", json={"interval": 2}, headers=headers)
    assert response.status_code == 200, response.json()
    edited_at = utcnow()
    before = len(deployment.runs(name))
    deployment.wait_for("3 runs after the edit", lambda: len(deployment.runs(name)) >= before + 3)
    assert proc.poll() is None  # no restart

    runs = deployment.runs(name)
    old = [r.due_at for r in runs if r.claimed_at < edited_at]
    new = [r.due_at for r in runs if r.claimed_at > edited_at]
    assert old[-1] - old[-2] == timedelta(seconds=1)
    assert [b - a for a, b in itertools.pairwise(new)] == [timedelta(seconds=2)] * (len(new) - 1)
    assert new[0] - edited_at < timedelta(seconds=5)  # in effect within 5 s
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(15)
