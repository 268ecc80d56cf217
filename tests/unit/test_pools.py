"""Which pool a worker runs for which queues, and what overrides the choice."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from conveyor import pools
from conveyor.cli.service import worker_children
from conveyor.cli.worker import _size_broker_connections, share_result_backend
from conveyor.engine import create_app
from conveyor.pools import DEFAULT_QUEUE_POOLS, pool_for, pool_groups, pool_size
from conveyor.settings import SettingsError, load_settings

DEFAULTS = load_settings().queues


def test_io_queues_run_on_threads_and_the_others_on_prefork() -> None:
    assert pool_for(["notifications"], DEFAULT_QUEUE_POOLS) == "threads"
    assert pool_for(["email", "notifications"], DEFAULT_QUEUE_POOLS) == "threads"
    assert pool_for(["webhooks"], DEFAULT_QUEUE_POOLS) == "threads"
    assert pool_for(["default"], DEFAULT_QUEUE_POOLS) == "prefork"
    assert pool_for(["data_processing", "maintenance"], DEFAULT_QUEUE_POOLS) == "prefork"


def test_a_mix_of_pools_runs_prefork() -> None:
    # plain `conveyor worker` consumes every queue: it keeps running prefork
    assert pool_for(DEFAULTS, DEFAULT_QUEUE_POOLS) == "prefork"
    assert pool_for(["email", "default"], DEFAULT_QUEUE_POOLS) == "prefork"


def test_a_named_pool_wins_over_the_queue_pools() -> None:
    assert pool_for(["notifications"], DEFAULT_QUEUE_POOLS, "gevent") == "gevent"
    assert pool_for(["notifications"], DEFAULT_QUEUE_POOLS, "prefork") == "prefork"
    assert pool_for(["default"], DEFAULT_QUEUE_POOLS, "gevent") == "gevent"


def test_queue_pools_can_be_changed() -> None:
    mine: dict[str, pools.Pool] = {"notifications": "gevent", "analytics": "threads"}
    assert pool_for(["notifications"], mine) == "gevent"
    assert pool_for(["analytics"], mine) == "threads"
    mine = {"notifications": "threads", "analytics": "gevent"}
    assert pool_for(["analytics"], mine) == "gevent"
    assert pool_for(["email"], mine) == "prefork"  # the map replaces the default one


def test_pools_group_the_queues_in_their_order() -> None:
    assert pool_groups(DEFAULTS, DEFAULT_QUEUE_POOLS) == {
        "prefork": ["default", "analytics", "data_processing", "maintenance", "cleanup"],
        "threads": ["email", "notifications"],
    }


@pytest.mark.parametrize(
    ("pool", "per_queue", "concurrency", "size"),
    [
        ("gevent", True, 0, 100),  # an I/O queue's pool: many greenlets
        ("gevent", True, 4, 100),  # CONVEYOR_WORKER_CONCURRENCY sizes the prefork workers
        ("threads", True, 0, 100),
        ("gevent", False, 0, 100),  # -P gevent alone: not one greenlet per CPU
        ("gevent", False, 8, 8),  # CONVEYOR_WORKER_POOL=gevent + CONCURRENCY=8: as before
        ("threads", False, 32, 32),
        ("prefork", True, 0, 0),  # Celery's default: the number of CPUs
        ("prefork", False, 3, 3),
    ],
)
def test_pool_size(pool: pools.Pool, per_queue: bool, concurrency: int, size: int) -> None:
    assert pool_size(pool, per_queue, concurrency, 100) == size


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.worker_pool == "auto"
    assert settings.queue_pools == DEFAULT_QUEUE_POOLS
    assert settings.worker_io_concurrency == 100
    monkeypatch.setenv("CONVEYOR_QUEUE_POOLS", '{"notifications": "gevent"}')
    monkeypatch.setenv("CONVEYOR_WORKER_IO_CONCURRENCY", "50")
    settings = load_settings()
    assert settings.queue_pools == {"notifications": "gevent"}
    assert settings.worker_io_concurrency == 50


def test_an_unknown_pool_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_QUEUE_POOLS", '{"notifications": "asyncio"}')
    with pytest.raises(SettingsError, match="CONVEYOR_QUEUE_POOLS"):
        load_settings()


def _argvs(**overrides: object) -> dict[str, list[str]]:
    settings = load_settings(data_dir=Path("var"), **overrides)
    return {child.name: list(child.argv) for child in worker_children(settings, 1, None)}


def test_up_starts_one_worker_per_pool() -> None:
    assert _argvs() == {
        "worker-prefork-1": [
            "worker", "-Q", "default,analytics,data_processing,maintenance,cleanup", "-P",
            "prefork",
        ],
        "worker-threads-1": ["worker", "-Q", "email,notifications", "-P", "threads", "-c", "100"],
    }  # fmt: skip


def test_up_with_a_named_pool_starts_one_worker_for_every_queue() -> None:
    argvs = _argvs(worker_pool="prefork", worker_concurrency=2)
    assert argvs == {"worker-1": ["worker", "-Q", ",".join(DEFAULTS), "-P", "prefork", "-c", "2"]}


def test_up_workers_and_concurrency_apply_to_every_pool() -> None:
    settings = load_settings(queue_pools={"email": "gevent"})
    children = worker_children(settings, 2, 8)
    assert [c.name for c in children] == [
        "worker-prefork-1", "worker-prefork-2", "worker-gevent-1", "worker-gevent-2",
    ]  # fmt: skip
    assert all(list(c.argv[-2:]) == ["-c", "8"] for c in children)


@pytest.mark.parametrize(
    ("broker", "pool", "size", "connections"),
    [
        ("redis://127.0.0.1:6379/0", "gevent", 100, 110),
        ("redis://127.0.0.1:6379/0", "threads", 100, 110),
        ("redis://127.0.0.1:6379/0", "threads", 4, 14),
        ("redis://127.0.0.1:6379/0", "prefork", 2, None),  # kombu's default (10)
        ("amqp://guest:guest@127.0.0.1:5672//", "gevent", 100, None),
        ("", "threads", 100, None),  # the embedded filesystem broker
    ],
)
def test_io_pools_get_a_broker_connection_per_slot(
    broker: str, pool: pools.Pool, size: int, connections: int | None
) -> None:
    settings = load_settings(broker_url=broker)
    app = create_app(settings)
    _size_broker_connections(app, settings, pool, size)
    assert app.conf.broker_transport_options.get("max_connections") == connections


def _backends_seen_by_two_threads(pool: pools.Pool) -> tuple[object, object]:
    app = create_app(load_settings(result_backend="redis://127.0.0.1:6379/0"))
    share_result_backend(app, pool)
    seen: list[object] = []
    for _ in range(2):  # as two greenlets would (each counts as a thread of its own)
        thread = threading.Thread(target=lambda: seen.append(app.backend))
        thread.start()
        thread.join()
    return seen[0], seen[1]


@pytest.mark.parametrize("pool", ["gevent", "eventlet"])
def test_a_green_pool_shares_one_result_backend(pool: pools.Pool) -> None:
    first, second = _backends_seen_by_two_threads(pool)
    assert first is second  # not rebuilt for every task's greenlet


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_other_pools_keep_celerys_backend_per_thread(pool: pools.Pool) -> None:
    first, second = _backends_seen_by_two_threads(pool)
    assert first is not second
