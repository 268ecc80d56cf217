"""``conveyor scheduler``: Celery Beat with conveyor's store-backed scheduler."""

from __future__ import annotations

import click

from conveyor.cli.common import Env, settings_or_exit

SCHEDULER_CLASS = "conveyor.scheduler:ConveyorScheduler"


@click.command()
def scheduler() -> None:
    """Run the scheduler (Celery Beat): submits periodic jobs and releases delayed ones.

    Schedules live in the job store (declared in code or conveyor.toml, or created
    with `conveyor schedules add` / the API). Run as many as you like: one leads
    (a lease), the others take over within CONVEYOR_SCHEDULER_LEASE_TTL if it dies.
    """
    env = Env(settings_or_exit())
    env.migrated_store()
    beat = env.app.Beat(
        loglevel=env.settings.log_level,
        scheduler=SCHEDULER_CLASS,
        max_interval=env.settings.scheduler_tick,
        quiet=True,
    )
    beat.run()
