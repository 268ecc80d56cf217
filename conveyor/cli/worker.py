"""``conveyor worker``: a Celery worker for conveyor's tasks, its pool chosen by its queues.

This module imports only what a worker runs (not the API, the dashboard or uvicorn):
the worker's main process and every pool child it forks carry these modules.
"""

from __future__ import annotations

import os
import sys
from typing import cast, get_args

import click
import structlog
from celery import Celery
from celery.bin.base import CLIContext
from celery.bin.worker import worker as celery_worker

from conveyor.cli.common import Env, settings_or_exit
from conveyor.greenlets import patched
from conveyor.pools import AUTO, GREEN_POOLS, IO_POOLS, Pool, PoolChoice, pool_for, pool_size
from conveyor.queues import broker_kind
from conveyor.settings import Settings

#: kombu's Redis transport: connections per channel unless max_connections is set
REDIS_CHANNEL_CONNECTIONS = 10
POOL_NAMES = list(get_args(PoolChoice))

log = structlog.get_logger("conveyor.cli")


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("-Q", "--queues", default=None, help="Comma-separated queues to consume [all].")
@click.option(
    "-c",
    "--concurrency",
    type=int,
    default=None,
    help="Pool size [CPUs; I/O pools: CONVEYOR_WORKER_IO_CONCURRENCY].",
)
@click.option(
    "-P",
    "--pool",
    type=click.Choice(POOL_NAMES),
    default=None,
    help="Pool implementation [CONVEYOR_WORKER_POOL; auto: the queues' CONVEYOR_QUEUE_POOLS].",
)
@click.option("-n", "--hostname", default=None, help="Worker node name [conveyor-<pid>@%h].")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(
    queues: str | None,
    concurrency: int | None,
    pool: str | None,
    hostname: str | None,
    celery_args: tuple[str, ...],
) -> None:
    """Run a Celery worker for conveyor's tasks.

    Example: `conveyor worker -Q email,notifications`. Without -P the pool follows
    the queues: I/O queues (email, notifications, webhooks) run on 100 threads, the
    others on prefork (CONVEYOR_QUEUE_POOLS, docs/operations.md).
    Extra arguments are passed to `celery worker` unchanged.
    """
    env = Env(settings_or_exit())
    settings = env.settings
    chosen = queues or ",".join(settings.queues)
    unknown = sorted(set(chosen.split(",")) - set(settings.queues))
    if unknown:
        raise click.ClickException(
            f"unknown queue(s) {', '.join(unknown)}; configured: {', '.join(settings.queues)}"
        )
    asked = cast("PoolChoice", pool or settings.worker_pool)
    pool_name = pool_for(chosen.split(","), settings.queue_pools, asked)
    _restart_if_patched_otherwise(pool_name)
    env.migrated_store()
    argv = [
        "--queues",
        chosen,
        "--pool",
        pool_name,
        "--hostname",
        hostname or f"conveyor-{os.getpid()}@%h",
        "--loglevel",
        settings.log_level,
    ]
    size = (
        concurrency
        if concurrency is not None
        else pool_size(
            pool_name,
            asked == AUTO,
            settings.worker_concurrency,
            settings.worker_io_concurrency,
        )
    )
    if size:
        argv += ["--concurrency", str(size)]
    _size_broker_connections(env.app, settings, pool_name, size)
    share_result_backend(env.app, pool_name)
    run_celery_worker(env.app, [*argv, *celery_args])


def run_celery_worker(app: Celery, args: list[str]) -> None:
    """``celery worker ARGS`` for ``app``, as ``app.worker_main`` runs it, but through
    Celery's ``worker`` command alone: ``worker_main`` loads Celery's whole command line
    with its plugins (Flower and tornado, the REPL and prompt_toolkit), about 11 MB that
    the worker and every pool child would carry without ever using them. The exit code
    is dropped, as ``worker_main`` drops it."""
    context = CLIContext(app=app, no_color=None, workdir=None, quiet=False)
    celery_worker.main(args=args, prog_name="celery worker", obj=context, standalone_mode=False)


def _size_broker_connections(app: Celery, settings: Settings, pool: Pool, size: int) -> None:
    """Let every slot of an I/O pool hold a Redis connection at once.

    kombu's Redis transport allows 10 connections per channel; a gevent or threads
    pool acknowledging more messages at once than that gets ``MaxConnectionsError:
    Too many connections`` and the message stays unacknowledged (delivered again
    after the visibility timeout).
    """
    if pool not in IO_POOLS or broker_kind(settings) != "redis":
        return
    options = dict(app.conf.broker_transport_options or {})
    wanted = max(int(options.get("max_connections", REDIS_CHANNEL_CONNECTIONS)), size + 10)
    app.conf.broker_transport_options = {**options, "max_connections": wanted}


def share_result_backend(app: Celery, pool: Pool) -> None:
    """One Celery result backend for every greenlet of a green pool.

    Celery keeps a result backend per thread unless ``result_backend_thread_safe`` is
    set, and its trace touches it after every run (``mark_as_done``, which stores
    nothing for conveyor's tasks: they ignore Celery results). A gevent or eventlet
    pool runs each task in a new greenlet, which counts as a new thread: every run
    built a backend of its own, and building a Redis backend reads redis-py's package
    metadata from disk (profiled: 22 % of a gevent worker's time, docs/benchmarks.md).
    conveyor itself never waits on Celery results.
    """
    if pool in GREEN_POOLS:
        app.conf.result_backend_thread_safe = True


def _restart_if_patched_otherwise(pool: Pool) -> None:
    """Start this worker again with ``-P pool`` when the monkey patches applied at import
    (from the command line and the environment) do not fit the pool the settings chose
    (conveyor.toml's queue_pools, say)."""
    wanted = pool if pool in GREEN_POOLS else None
    if patched() == wanted:
        return
    if sys.argv[1:2] != ["worker"]:
        raise click.ClickException(
            f"the {pool} pool needs the worker started as `conveyor worker -P {pool}`"
        )
    log.info("worker_restarted_for_pool", pool=pool)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, "-m", "conveyor", "worker", "-P", pool, *sys.argv[2:]]
    os.execv(sys.executable, argv)
