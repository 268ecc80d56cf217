"""A conveyor deployment for integration/acceptance tests: real processes, real services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.engine import create_app, import_task_modules
from conveyor.jobs import Job
from conveyor.settings import Settings, load_settings
from conveyor.store import JobStore, open_store
from conveyor.submit import SubmitRequest, Submitter
from tests.support.procs import alive, descendants

ROOT = Path(__file__).resolve().parents[2]
TEST_TASKS = "tests.support.tasks"


@dataclass
class Stack:
    """Settings shared by this test process and the conveyor processes it starts."""

    data_dir: Path
    overrides: Mapping[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        env.update(
            {
                "CONVEYOR_DATA_DIR": str(self.data_dir),
                "CONVEYOR_IMPORTS": TEST_TASKS,
                "CONVEYOR_CONFIG": str(self.data_dir / "none.toml"),
                "CONVEYOR_LOG_LEVEL": "INFO",
                "PYTHONPATH": str(ROOT),
            }
        )
        env.update(self.overrides)
        return env

    def settings(self) -> Settings:
        values: dict[str, Any] = {
            key.removeprefix("CONVEYOR_").lower(): value
            for key, value in self.env.items()
            if key.startswith("CONVEYOR_") and key not in ("CONVEYOR_CONFIG",)
        }
        values["imports"] = [TEST_TASKS]
        return load_settings(**values)

    def conveyor(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str, log_name: str = "proc") -> subprocess.Popen[bytes]:
        with (self.data_dir / f"{log_name}-{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", *args],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        # every process below ours (e.g. the children `conveyor up` starts in their own
        # process groups), so none outlives the test if its parent dies first
        tree = {pid for proc in self.procs for pid in descendants(proc.pid)}
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for proc in self.procs:  # pool children of a worker whose leader exited
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        while tree and time.monotonic() < deadline:
            tree = {pid for pid in tree if alive(pid)}
            time.sleep(0.1)
        for pid in tree:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.data_dir.glob("*.log")))


class Client:
    """In-process submitter + store reader for the stack under test."""

    def __init__(self, stack: Stack) -> None:
        settings = stack.settings()
        import_task_modules(settings)
        self.settings = settings
        self.store: JobStore = open_store(settings)
        self.app = create_app(settings)
        self.submitter = Submitter(settings, self.store, self.app)

    def submit(self, task: str, *args: Any, **kwargs: Any) -> Job:
        return self.submitter.submit(SubmitRequest(task=task, args=args, kwargs=kwargs))

    def wait(self, job_id: str, timeout: float = 30) -> Job:
        deadline = time.monotonic() + timeout
        job = self.store.get_job(job_id)
        while time.monotonic() < deadline:
            job = self.store.get_job(job_id)
            if job is not None and job.state.is_final:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} not final after {timeout}s: {job}")

    def close(self) -> None:
        self.store.close()


@contextmanager
def running(stack: Stack, *worker_args: str) -> Iterator[Client]:
    """Migrate, start one worker, yield a client; stop everything afterwards."""
    result = stack.conveyor("migrate")
    assert result.returncode == 0, result.stderr
    client = Client(stack)
    if not client.settings.is_embedded_broker:
        client.app.control.purge()  # leftovers of an earlier, interrupted run
    stack.start("worker", "-c", "2", *worker_args, log_name="worker")
    try:
        yield client
    finally:
        client.close()
        stack.stop_all()
