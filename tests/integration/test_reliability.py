"""Nothing lost, nothing run twice — on the embedded default, Redis and RabbitMQ.

Real processes (`conveyor worker`, `conveyor scheduler`) against real services:
retries → DEAD → replay → SUCCEEDED, 20 parallel submits with one idempotency
key, cancel before run, the hard time limit, a long delay that outlives a full
restart of every process, and a crash test that SIGKILLs pool processes under
200 in-flight jobs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor.cancellation import cancel_job
from conveyor.deadletters import replay
from conveyor.jobs import Job, JobState
from conveyor.submit import SubmitRequest
from tests.support.services import (
    AMQP_URL,
    REDIS_URL,
    flush_redis,
    fresh_postgres_database,
    require,
)
from tests.support.stack import Client, Stack

pytestmark = pytest.mark.integration

FAST = {
    "CONVEYOR_DELAY_THRESHOLD": "1",
    "CONVEYOR_SCHEDULER_TICK": "0.2",
}


@dataclass
class Deployment:
    kind: str
    stack: Stack
    client: Client
    markers: Path

    def start_processes(self) -> None:
        self.stack.start("worker", "-c", "2", log_name="worker")
        self.stack.start("scheduler", log_name="scheduler")

    def restart_all(self, pause: float = 0.0) -> None:
        """Kill every conveyor process (SIGKILL: nothing gets to clean up), then start anew."""
        for proc in self.stack.procs:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.stack.procs.clear()
        time.sleep(pause)
        self.start_processes()

    def submit(self, task: str, **kwargs: object) -> Job:
        return self.client.submit(task, **kwargs)

    def marker(self, job_id: str) -> str:
        path = self.markers / job_id
        return path.read_text() if path.exists() else ""


def _overrides(kind: str, db_url: str | None) -> dict[str, str]:
    if kind == "embedded":
        return {}
    assert db_url is not None
    if kind == "redis":
        flush_redis(4)
        flush_redis(5)
        return {
            "CONVEYOR_BROKER_URL": f"{REDIS_URL}/4",
            "CONVEYOR_RESULT_BACKEND": f"{REDIS_URL}/5",
            "CONVEYOR_DATABASE_URL": db_url,
        }
    require("rabbitmq")
    return {
        "CONVEYOR_BROKER_URL": AMQP_URL,
        "CONVEYOR_RESULT_BACKEND": "db+" + db_url,
        "CONVEYOR_DATABASE_URL": db_url,
    }


@pytest.fixture(scope="module", params=["embedded", "redis", "rabbitmq"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    kind: str = request.param
    data_dir = tmp_path_factory.mktemp(f"rel_{kind}")
    markers = data_dir / "markers"
    markers.mkdir()
    if kind == "embedded":
        yield from _deploy(kind, data_dir, markers, None)
        return
    with fresh_postgres_database() as db_url:
        yield from _deploy(kind, data_dir, markers, db_url)


def _deploy(kind: str, data_dir: Path, markers: Path, db_url: str | None) -> Iterator[Deployment]:
    stack = Stack(data_dir, {**FAST, **_overrides(kind, db_url)})
    result = stack.conveyor("migrate")
    assert result.returncode == 0, result.stderr
    client = Client(stack)
    if not client.settings.is_embedded_broker:
        client.app.control.purge()
    deployment = Deployment(kind, stack, client, markers)
    deployment.start_processes()
    try:
        yield deployment
    finally:
        client.close()
        stack.stop_all()


def _wait_all(d: Deployment, jobs: list[Job], timeout: float) -> list[Job]:
    deadline = time.monotonic() + timeout
    return [d.client.wait(job.id, timeout=max(deadline - time.monotonic(), 1)) for job in jobs]


# -- retries → DEAD → replay → SUCCEEDED ----------------------------------------------
def test_retries_dead_letter_and_replay(deployment: Deployment) -> None:
    d = deployment
    dead = d.client.wait(d.submit("tests.fragile", should_fail=True).id)
    assert dead.state is JobState.DEAD, d.stack.logs()[-3000:]
    assert dead.attempts == 3
    attempts = d.client.store.list_attempts([dead.id])[dead.id]
    assert [(a.attempt, a.state) for a in attempts] == [
        (1, JobState.RETRYING),
        (2, JobState.RETRYING),
        (3, JobState.DEAD),
    ]
    assert all(a.error_type == "TemporaryError" and a.worker for a in attempts)
    entry = d.client.store.get_dead_letter(dead.id)
    assert entry is not None and entry.reason == "exhausted"
    assert dict(entry.kwargs) == {"should_fail": True}

    again = replay(d.client.store, d.client.submitter, dead.id, {"should_fail": False})
    done = d.client.wait(again.id)
    assert done.state is JobState.SUCCEEDED
    assert done.result == "fixed"
    assert done.replay_of == dead.id


# -- idempotency ---------------------------------------------------------------------------
def test_parallel_submits_with_one_key_make_one_job(deployment: Deployment) -> None:
    d = deployment
    key = f"key-{uuid.uuid4().hex}"
    request = SubmitRequest(
        task="tests.mark", kwargs={"marker_dir": str(d.markers)}, idempotency_key=key
    )
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: d.client.submitter.submit_once(request), range(20)))
    ids = {job.id for job, _ in results}
    assert len(ids) == 1
    assert sum(created for _, created in results) == 1
    done = d.client.wait(ids.pop())
    assert done.state is JobState.SUCCEEDED
    time.sleep(0.5)  # a duplicate message would have run by now
    assert d.marker(done.id) == "x"


# -- cancellation ---------------------------------------------------------------------------
def test_cancelled_jobs_never_run(deployment: Deployment) -> None:
    d = deployment
    # both pool processes busy: the next job waits in the queue / the worker's prefetch
    busy = [d.submit("tests.mark", marker_dir=str(d.markers), seconds=1.5) for _ in range(2)]
    in_broker = d.submit("tests.mark", marker_dir=str(d.markers))
    assert cancel_job(d.client.store, d.client.app, in_broker.id).state is JobState.CANCELLED
    eta_job = d.client.submitter.submit(
        SubmitRequest(task="tests.mark", kwargs={"marker_dir": str(d.markers)}, countdown=0.8)
    )
    held = d.client.submitter.submit(
        SubmitRequest(task="tests.mark", kwargs={"marker_dir": str(d.markers)}, countdown=1.5)
    )
    assert eta_job.state is JobState.QUEUED and held.state is JobState.SCHEDULED
    for job in (eta_job, held):
        assert cancel_job(d.client.store, d.client.app, job.id).state is JobState.CANCELLED
    probe = d.client.wait(d.submit("tests.mark", marker_dir=str(d.markers), seconds=0.0).id)
    assert probe.state is JobState.SUCCEEDED
    time.sleep(2.5)  # past both due times
    for job, name in ((in_broker, "in_broker"), (eta_job, "eta"), (held, "held")):
        current = d.client.store.get_job(job.id)
        assert current is not None and current.state is JobState.CANCELLED, name
        assert d.marker(job.id) == "", name
    assert all(d.client.wait(job.id).state is JobState.SUCCEEDED for job in busy)
    assert "job_skipped" in d.stack.logs()


# -- hard time limit ---------------------------------------------------------------------
def test_hard_time_limit_is_a_failed_attempt_then_follows_the_policy(
    deployment: Deployment,
) -> None:
    d = deployment
    done = d.client.wait(d.submit("tests.overtime", seconds=30).id, timeout=30)
    assert done.state is JobState.DEAD, d.stack.logs()[-3000:]
    attempts = d.client.store.list_attempts([done.id])[done.id]
    assert [(a.attempt, a.state, a.reason) for a in attempts] == [
        (1, JobState.RETRYING, "time_limit"),
        (2, JobState.DEAD, "time_limit"),
    ]
    entry = d.client.store.get_dead_letter(done.id)
    assert entry is not None and entry.error_type == "TimeLimitExceeded"


# -- delays held in the store ------------------------------------------------------------
def test_held_delay_runs_close_to_its_eta(deployment: Deployment) -> None:
    d = deployment
    job = d.client.submitter.submit(
        SubmitRequest(task="tests.mark", kwargs={"marker_dir": str(d.markers)}, countdown=2)
    )
    assert job.state is JobState.SCHEDULED  # above the (test) threshold of 1 s
    done = d.client.wait(job.id)
    assert done.state is JobState.SUCCEEDED
    assert done.scheduled_for is not None and done.started_at is not None
    lag = (done.started_at - done.scheduled_for).total_seconds()
    assert 0 <= lag < 2.0, lag


# -- a long delay outlives a full restart -------------------------------------------------
def test_long_delay_survives_restart_of_every_process_and_fires_once(
    deployment: Deployment,
) -> None:
    d = deployment
    job = d.client.submitter.submit(
        SubmitRequest(task="tests.mark", kwargs={"marker_dir": str(d.markers)}, countdown=3)
    )
    assert job.state is JobState.SCHEDULED
    d.restart_all(pause=3.5)  # everything is down when the job falls due
    done = d.client.wait(job.id, timeout=60)
    assert done.state is JobState.SUCCEEDED
    assert done.scheduled_for is not None and done.started_at is not None
    assert done.started_at >= done.scheduled_for
    time.sleep(1.0)
    assert d.marker(job.id) == "x"
    assert d.client.store.list_attempts([job.id])[job.id][0].state is JobState.SUCCEEDED


# -- crash: SIGKILL pool processes under 200 in-flight jobs --------------------------------
def _pool_children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in out.stdout.split()]


def _kill_pool(d: Deployment) -> int:
    worker = next(p for p in d.stack.procs if "worker" in p.args and p.poll() is None)
    killed = 0
    for child in _pool_children(worker.pid):
        os.kill(child, signal.SIGKILL)
        killed += 1
    return killed


def test_sigkill_under_200_in_flight_jobs_loses_nothing(
    deployment: Deployment, request: pytest.FixtureRequest
) -> None:
    d = deployment
    if d.kind == "embedded":
        # Two causes seen. (1) Fixed: the worker read a message file kombu's filesystem
        # transport had created but not yet written ("Unrecoverable error: JSONDecodeError",
        # the worker stopped consuming); conveyor/fsbroker.py writes atomically now.
        # (2) Open, reproduced under load (2026-11-21): after its pool processes are
        # SIGKILLed the worker on the filesystem broker may run nothing more (one
        # WorkerLostError "exitcode 0", the replacement processes stay idle); its reserved
        # messages stay unacknowledged until the worker stops ("Restoring N unacknowledged
        # message(s)"), so they run after a restart. Not strict: it passes when unloaded.
        request.applymarker(
            pytest.mark.xfail(
                reason="embedded broker: worker may stall after pool SIGKILL until restarted",
                strict=False,
            )
        )
    jobs = [d.submit("tests.mark", marker_dir=str(d.markers), seconds=0.02) for _ in range(200)]
    d.client.wait(jobs[0].id)  # the pool is up and busy
    killed = 0
    for _ in range(3):
        killed += _kill_pool(d)
        time.sleep(1.0)
    assert killed >= 2
    finished = _wait_all(d, jobs, timeout=100)
    assert [j.state for j in finished] == [JobState.SUCCEEDED] * 200, d.stack.logs()[-3000:]
    # each effect observed at least once ...
    assert all(d.marker(j.id).count("x") >= 1 for j in finished)
    # ... and recorded once: one attempt per job, one success
    attempts = d.client.store.list_attempts([j.id for j in finished])
    assert all(
        [(a.attempt, a.state) for a in attempts[j.id]] == [(1, JobState.SUCCEEDED)]
        for j in finished
    )
    assert all(j.attempts == 1 for j in finished)


def test_sigkill_of_the_whole_worker_loses_nothing(deployment: Deployment) -> None:
    d = deployment
    if d.kind != "rabbitmq":
        pytest.skip(
            "only RabbitMQ redelivers at once when a whole worker dies: Redis waits for "
            "visibility_timeout, the filesystem broker has no acknowledgements "
            "(docs/reliability.md)"
        )
    jobs = [d.submit("tests.mark", marker_dir=str(d.markers), seconds=0.02) for _ in range(100)]
    d.client.wait(jobs[0].id)  # the worker is busy with them
    worker = next(p for p in d.stack.procs if "worker" in p.args and p.poll() is None)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    d.stack.start("worker", "-c", "2", log_name="worker")
    finished = _wait_all(d, jobs, timeout=90)
    assert [j.state for j in finished] == [JobState.SUCCEEDED] * 100, d.stack.logs()[-3000:]
    assert all(d.marker(j.id).count("x") >= 1 for j in finished)
    attempts = d.client.store.list_attempts([j.id for j in finished])
    assert all(len(attempts[j.id]) == 1 for j in finished)
