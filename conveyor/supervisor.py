"""Run several conveyor processes as one service (``conveyor up``).

Each child runs in its own process group; on Ctrl-C/SIGTERM every group gets
SIGTERM (a Celery worker takes that as a warm shutdown and stops its pool),
and whatever is still alive after the grace period gets SIGKILL — so nothing
is left behind. If one child dies on its own, the others are stopped too and
``up`` exits non-zero.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

import structlog

log = structlog.get_logger("conveyor.up")


@dataclass(frozen=True, slots=True)
class Child:
    name: str
    #: arguments of ``conveyor`` (``["worker", "-c", "2"]``)
    argv: Sequence[str]
    #: run ``python <argv>`` instead of ``python -m conveyor <argv>`` (an example's extra process)
    plain_python: bool = False

    def command(self) -> list[str]:
        prefix = [sys.executable] if self.plain_python else [sys.executable, "-m", "conveyor"]
        return [*prefix, *self.argv]


class Supervisor:
    def __init__(
        self,
        children: Sequence[Child],
        env: Mapping[str, str] | None = None,
        grace: float = 20.0,
    ) -> None:
        self.children = children
        self.env = dict(env if env is not None else os.environ)
        self.grace = grace
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def start(self) -> None:
        for child in self.children:
            self.procs[child.name] = subprocess.Popen(
                child.command(), env=self.env, start_new_session=True
            )
            log.info("process_started", process=child.name, pid=self.procs[child.name].pid)

    def run(self) -> int:
        """Start every child and wait; returns the exit code for ``conveyor up``."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.start()
        code = 0
        while not self._stopping:
            dead = [(name, p.returncode) for name, p in self.procs.items() if p.poll() is not None]
            if dead:
                for name, returncode in dead:
                    log.error("process_exited", process=name, returncode=returncode)
                code = 1
                break
            time.sleep(0.2)
        self.stop()
        return code

    def _signal_groups(self, sig: int) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    continue

    def stop(self) -> None:
        log.info("stopping", processes=sorted(self.procs))
        self._signal_groups(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and any(p.poll() is None for p in self.procs.values()):
            time.sleep(0.1)
        # the leaders may be gone while pool children linger: kill every group regardless
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        for proc in self.procs.values():
            proc.wait()
        log.info("stopped")
