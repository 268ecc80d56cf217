"""tracemalloc snapshots of a conveyor worker's processes (bench only, issue #11 memory).

Imported by the worker when ``BENCH_TRACEMALLOC`` names a folder (bench/memory.py adds
this module to CONVEYOR_IMPORTS). It starts tracemalloc in the worker's main process
(pool children stop tracing when forked unless ``BENCH_TRACEMALLOC_CHILDREN=1``) and,
in every traced process, a thread that writes a
snapshot ``<folder>/<main|child>-<pid>-<jobs>.snap`` when the probe's count of finished
jobs passes each of ``BENCH_TRACEMALLOC_AT`` (comma-separated, e.g. ``10000,60000``).
Nothing in conveyor reads these variables.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from celery import signals

from bench.suite.probe import DONE, URL_ENV

FOLDER_ENV = "BENCH_TRACEMALLOC"
AT_ENV = "BENCH_TRACEMALLOC_AT"
#: "1": the pool children trace too (slow); otherwise they stop tracing when forked
CHILDREN_ENV = "BENCH_TRACEMALLOC_CHILDREN"
FRAMES = 8


def _watch(role: str) -> None:
    import redis  # noqa: PLC0415  (only when tracing)

    folder = Path(os.environ[FOLDER_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    marks = sorted(int(n) for n in os.environ.get(AT_ENV, "10000,60000").split(","))
    client = redis.Redis.from_url(os.environ[URL_ENV])
    pid = os.getpid()
    while marks:
        time.sleep(0.5)
        done = int(client.get(DONE) or 0)
        if done >= marks[0]:
            mark = marks.pop(0)
            tracemalloc.take_snapshot().dump(str(folder / f"{role}-{pid}-{mark}.snap"))


def _start(role: str) -> None:
    threading.Thread(target=_watch, args=(role,), name="bench-memtrace", daemon=True).start()


if os.environ.get(FOLDER_ENV) and not tracemalloc.is_tracing():
    tracemalloc.start(FRAMES)
    _start("main")


@signals.worker_process_init.connect(weak=False)
def _child(**_: Any) -> None:
    if not os.environ.get(FOLDER_ENV):
        return
    if os.environ.get(CHILDREN_ENV) == "1":
        _start("child")
    else:
        tracemalloc.stop()
