"""Worker processes of the queue under test: start, stop, memory (RSS of the whole tree)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "var" / "bench" / "logs"


class Group:
    """Processes started together, each in its own session so its children stop with it."""

    def __init__(self, commands: Sequence[Sequence[str]], env: Mapping[str, str], label: str):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen[bytes]] = []
        for n, command in enumerate(commands):
            log = (LOG_DIR / f"{label}-{n}.log").open("wb")
            self.procs.append(
                subprocess.Popen(
                    list(command),
                    env=dict(env),
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self.procs)

    def descendants(self) -> int:
        return sum(descendants(proc.pid) for proc in self.procs)

    def rss_split_mb(self) -> tuple[float, float]:
        """(main processes, their descendants) resident memory, MB."""
        pairs = [main_and_children_rss_kb(proc.pid) for proc in self.procs]
        return sum(m for m, _ in pairs) / 1024, sum(c for _, c in pairs) / 1024

    def rss_mb(self) -> float:
        """Resident memory of every process of the group and their descendants, MB."""
        return sum(tree_rss_kb(proc.pid) for proc in self.procs) / 1024

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to each main process (its own shutdown), SIGKILL to what is left."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            # stray children (prefork pool, work horses) of a stopped parent
            _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def tree_rss_kb(pid: int) -> int:
    return _rss_kb(pid) + sum(tree_rss_kb(child) for child in _children(pid))


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    return [pid, *(below for child in _children(pid) for below in tree(child))]


def cpu_seconds(pid: int, *, with_reaped: bool = False) -> float:
    """CPU (utime + stime) a live process has used; ``with_reaped`` adds that of its
    children it has waited for (a prefork worker's recycled pool processes). 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> int:
    """How many processes run below ``pid`` (a prefork worker: its pool children)."""
    return sum(1 + descendants(child) for child in _children(pid))


def main_and_children_rss_kb(pid: int) -> tuple[int, int]:
    """Resident memory of process ``pid`` and, apart, of all its descendants (its pool), kB."""
    main = _rss_kb(pid)
    return main, (tree_rss_kb(pid) - main) if main else 0
