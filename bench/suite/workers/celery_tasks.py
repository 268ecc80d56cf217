"""Plain Celery: the reference, with the flags conveyor gives Celery (json, late acks)."""

from __future__ import annotations

import os
import time

from celery import Celery

from bench.suite import probe

BROKER_ENV = "BENCH_BROKER_URL"

app = Celery("bench", broker=os.environ.get(BROKER_ENV, "redis://127.0.0.1:6379/15"))
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=4,
    task_default_queue="default",
    task_ignore_result=True,
    broker_transport_options={"visibility_timeout": 3600},
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop() -> None:
    probe.finished(time.time())


@app.task(name="bench.sleep")
def sleep(ms: int) -> None:
    started = time.time()
    time.sleep(ms / 1000)
    probe.finished(started)


@app.task(name="bench.stamp")
def stamp(sent_at: float) -> None:
    probe.started_after(sent_at)


@app.task(name="bench.delayed")
def delayed(index: int) -> None:
    probe.delayed_started(index)
