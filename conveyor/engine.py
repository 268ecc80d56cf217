"""Build the Celery app from Settings.

The configuration the seed documents standardise on (JSON only, UTC, time
limits 300/240 s, prefetch 4, 1000 tasks per child, results kept 1 h), plus
late acks with ``reject_on_worker_lost`` so a crashed worker loses nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

from celery import Celery
from kombu.entity import Exchange, Queue

from conveyor import redis_client
from conveyor.acks import DeferredAcksStep
from conveyor.execution import ConveyorTask
from conveyor.fsbroker import TRANSPORT as FILESYSTEM_TRANSPORT
from conveyor.queuestate import QueueStateStep
from conveyor.routing import route_for
from conveyor.settings import Settings
from conveyor.task import TaskRegistry, TaskSpec, registry
from conveyor.timerheap import TimerPurgeStep

CATALOG_MODULE = "conveyor.catalog"
#: conveyor's own internal tasks (completion callbacks)
INTERNAL_MODULES = ("conveyor.callbacks",)


def import_task_modules(settings: Settings) -> None:
    """Import the catalog and the user's task modules so their @task specs register."""
    for module in (CATALOG_MODULE, *INTERNAL_MODULES, *settings.imports):
        importlib.import_module(module)


def _broker_options(settings: Settings) -> dict[str, Any]:
    if settings.is_embedded_broker:
        folder = settings.broker_folder
        for sub in ("queue", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            # flow control defers jobs by short countdowns: pick them up promptly
            "polling_interval": 0.1,
        }
    options: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout}
    if settings.broker_url.startswith("redis"):
        # priority steps: 0..9 map onto Redis sub-queues
        options.update(
            {"queue_order_strategy": "priority", "priority_steps": list(range(10)), "sep": ":"}
        )
    return options


def _queues(settings: Settings) -> list[Queue]:
    arguments = {} if settings.is_embedded_broker else {"x-max-priority": 9}
    return [
        Queue(name, Exchange(name, type="direct"), routing_key=name, queue_arguments=arguments)
        for name in settings.queues
    ]


def _celery_options(spec: TaskSpec, default_soft: float | None = None) -> dict[str, Any]:
    options: dict[str, Any] = dict(spec.celery_options)
    if spec.time_limit is not None:
        options["time_limit"] = spec.time_limit
        # a task's own hard limit below the global soft limit: the soft limit may not exceed
        # it (Celery refuses to publish such a task, e.g. for a retry)
        if spec.soft_time_limit is None and default_soft and default_soft > spec.time_limit:
            options["soft_time_limit"] = spec.time_limit
    if spec.soft_time_limit is not None:
        options["soft_time_limit"] = spec.soft_time_limit
    return options


def register_tasks(app: Celery, tasks: TaskRegistry = registry) -> None:
    """Create one Celery task (base ConveyorTask) per spec not yet on ``app``."""
    for spec in tasks:
        if spec.name in app.tasks:
            continue
        app.task(
            base=ConveyorTask,
            name=spec.name,
            conveyor_spec=spec,
            shared=False,
            **_celery_options(spec, app.conf.task_soft_time_limit),
        )(spec.fn)


def create_app(settings: Settings, tasks: TaskRegistry = registry) -> Celery:
    """A Celery app configured from ``settings`` with every registered task on it."""
    if settings.broker_url.startswith("redis"):
        redis_client.install()  # one redis-py client per kombu channel, not one per command
    app = Celery(
        "conveyor",
        broker=settings.effective_broker_url,
        backend=settings.effective_result_backend,
        set_as_current=True,
    )

    def router(name: str, args: Any, kwargs: Any, options: Any, **kw: Any) -> dict[str, str]:
        if "queue" in options:
            return {"queue": options["queue"]}
        spec_queue = tasks.get(name).queue if name in tasks else None
        return {"queue": spec_queue or route_for(name, settings)}

    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        event_serializer="json",
        timezone="UTC",
        enable_utc=True,
        task_track_started=True,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=settings.task_soft_time_limit,
        worker_prefetch_multiplier=settings.worker_prefetch_multiplier,
        worker_max_tasks_per_child=settings.worker_max_tasks_per_child,
        result_expires=settings.result_expires,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_default_queue=settings.default_queue,
        task_default_exchange=settings.default_queue,
        task_default_routing_key=settings.default_queue,
        task_queues=_queues(settings),
        task_create_missing_queues=False,
        task_routes=(router,),
        broker_transport_options=_broker_options(settings),
        # kombu's filesystem transport with atomic writes (conveyor/fsbroker.py)
        broker_transport=FILESYSTEM_TRANSPORT if settings.is_embedded_broker else None,
        result_backend_transport_options={"visibility_timeout": settings.visibility_timeout},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        worker_hijack_root_logger=False,
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
        result_extended=True,
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )
    app.conveyor_settings = settings
    app.steps["consumer"].add(QueueStateStep)
    app.steps["consumer"].add(DeferredAcksStep)
    app.steps["worker"].add(TimerPurgeStep)
    register_tasks(app, tasks)
    return app
