"""Commands that run conveyor's processes: up, api, worker, scheduler, migrate."""

from __future__ import annotations

import os
import sys
from typing import Any, cast, get_args

import click
import structlog
import uvicorn

from conveyor.cli.common import Env, settings_or_exit
from conveyor.dashboard import DashboardConfigError
from conveyor.example import (
    Example,
    ExampleError,
    available_examples,
    child_environment,
    load_example,
)
from conveyor.keys import Authenticator, ensure_dev_key
from conveyor.pools import (
    AUTO,
    Pool,
    PoolChoice,
    pool_groups,
    pool_size,
)
from conveyor.server import create_server
from conveyor.settings import Settings
from conveyor.store import StoreError
from conveyor.supervisor import Child, Supervisor

SCHEDULER_CLASS = "conveyor.scheduler:ConveyorScheduler"
#: what each process of ``conveyor api --workers N`` serves (N > 1)
SERVER_FACTORY = "conveyor.server:server_from_environment"
#: kombu's Redis transport: connections per channel unless max_connections is set
REDIS_CHANNEL_CONNECTIONS = 10
POOL_NAMES = list(get_args(PoolChoice))

log = structlog.get_logger("conveyor.cli")


def _migrate(env: Env) -> None:
    try:
        env.store.migrate()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
def migrate() -> None:
    """Create or upgrade the job store's tables (safe to run any time)."""
    env = Env(settings_or_exit())
    _migrate(env)
    click.echo("job store migrated")


@click.command()
@click.option("--host", default=None, help="Interface to listen on [CONVEYOR_API_HOST].")
@click.option("--port", type=int, default=None, help="Port to listen on [CONVEYOR_API_PORT].")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="API processes serving the port [CONVEYOR_API_WORKERS, default 1].",
)
def api(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) and the dashboard at /dashboard.

    Refuses to start without API keys: set CONVEYOR_API_KEYS or create one with
    `conveyor keys create`.
    """
    env = Env(settings_or_exit())
    store = env.migrated_store()
    auth = Authenticator(env.settings, store)
    if not auth.has_keys():
        raise click.ClickException(
            "no API keys configured: set CONVEYOR_API_KEYS or run `conveyor keys create`"
        )
    try:
        app = create_server(env.settings, store, env.submitter, authenticator=auth)
    except DashboardConfigError as exc:
        raise click.ClickException(str(exc)) from None
    processes = workers or env.settings.api_workers
    serve: Any = app
    if processes > 1:
        # each worker process builds its own server from the same environment (uvicorn
        # starts them fresh, not forked), once this one has checked keys, store, dashboard
        store.close()
        serve = SERVER_FACTORY
    uvicorn.run(
        serve,
        factory=processes > 1,
        workers=processes if processes > 1 else None,
        host=host or env.settings.api_host,
        port=port or env.settings.api_port,
        log_config=None,
        access_log=False,
        # open event streams (GET /api/v1/events) never end by themselves
        timeout_graceful_shutdown=3,
    )


def _load_example(name: str) -> Example:
    """The example ``name``, or exit 2 with a one-line error listing the available ones."""
    try:
        return load_example(name)
    except ExampleError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


def _list_examples() -> None:
    names = available_examples()
    if not names:
        click.echo("no examples: they live in examples/ of a source checkout")
    for name in names:
        try:
            title = load_example(name).title
        except ExampleError as exc:
            title = f"(cannot load: {exc})"
        click.echo(f"{name:14} {title}")


def _prepare_example(example: Example, settings: Settings) -> None:
    click.echo(f"example {example.name}: {example.title}")
    click.echo(
        f"example {example.name}: preparing its tables with SYNTHETIC data "
        "(generated fake users and records, not real people)"
    )
    try:
        example.prepare(settings)
    except Exception as exc:  # the example's own failure, reported in one line
        raise click.ClickException(f"example {example.name!r} failed to prepare: {exc}") from None


def worker_children(settings: Settings, workers: int, concurrency: int | None) -> list[Child]:
    """``workers`` worker processes per pool: with worker_pool `auto`, the I/O queues get
    their own worker(s) on their I/O pool, the other queues prefork ones."""
    auto = settings.worker_pool == AUTO
    if auto:
        groups = pool_groups(settings.queues, settings.queue_pools)
    else:
        groups = {cast("Pool", settings.worker_pool): list(settings.queues)}
    children = []
    for pool, queues in groups.items():
        size = concurrency or pool_size(
            pool, auto, settings.worker_concurrency, settings.worker_io_concurrency
        )
        argv = ["worker", "-Q", ",".join(queues), "-P", pool]
        argv += ["-c", str(size)] if size else []
        name = "worker" if len(groups) == 1 else f"worker-{pool}"
        children += [Child(f"{name}-{n + 1}", argv) for n in range(workers)]
    return children


@click.command()
@click.option(
    "--workers", type=int, default=1, show_default=True, help="Worker processes per pool."
)
@click.option("-c", "--concurrency", type=int, default=None, help="Pool size per worker.")
@click.option(
    "--example",
    "example_name",
    default=None,
    metavar="NAME",
    help="Also run example NAME (examples/NAME: its tasks, schedules and synthetic data).",
)
@click.option("--list-examples", is_flag=True, help="List the examples and exit.")
def up(
    workers: int, concurrency: int | None, example_name: str | None, list_examples: bool
) -> None:
    """Start the whole service on this machine: API, worker(s) and scheduler.

    One worker per pool: the I/O queues (email, notifications: CONVEYOR_QUEUE_POOLS)
    on threads, the others on prefork.

    Migrates the job store first. With no API key configured (dev mode) it
    generates one, writes it to ./var/dev-api-key (mode 0600) and prints it.
    With `--example NAME` it also loads an example application (see
    `--list-examples` and docs/examples.md) and fills its tables with synthetic
    data. Ctrl-C stops every process.
    """
    if list_examples:
        _list_examples()
        return
    example = _load_example(example_name) if example_name else None
    child_env = dict(os.environ)
    if example is not None:
        child_env = child_environment(example, os.environ)
        os.environ.update(child_env)  # this process prepares the example with the same settings
    env = Env(settings_or_exit())
    settings = env.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _migrate(env)
    if example is not None:
        _prepare_example(example, settings)
    dev_key = ensure_dev_key(settings, env.store)
    if not Authenticator(settings, env.store).has_keys():
        raise click.ClickException(
            "no API keys configured: set CONVEYOR_API_KEYS or run `conveyor keys create`"
        )
    if dev_key:
        click.echo(f"dev API key (also in {settings.dev_key_file}): {dev_key}")
    click.echo(f"API on http://{settings.api_host}:{settings.api_port}  (docs at /docs)")
    if settings.dashboard_enabled:
        click.echo(f"dashboard on http://{settings.api_host}:{settings.api_port}/dashboard")
    children = [Child("api", ["api"]), Child("scheduler", ["scheduler"])]
    children += worker_children(settings, workers, concurrency)
    if example is not None:
        children += [Child(n, argv, plain_python=True) for n, argv in example.processes.items()]
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        for line in example.notes:
            click.echo(f"example {example.name}: {line.replace('{api}', api_url)}")
        click.echo(
            f"example {example.name}: its jobs ({example.name}.*) show in the dashboard; "
            "all its data is SYNTHETIC"
        )
    env.store.close()
    sys.exit(Supervisor(children, env=child_env).run())
