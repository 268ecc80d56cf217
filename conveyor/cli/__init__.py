"""The ``conveyor`` command."""

from __future__ import annotations

import click

from conveyor.cli import config, flower, jobs, keys, queues, reliability, schedules, service


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="conveyor")
def cli() -> None:
    """conveyor — a background job service built on Celery.

    Start everything on this machine with `conveyor up`; configure with
    CONVEYOR_* environment variables or ./conveyor.toml.
    """


for command in (
    *service.COMMANDS,
    *jobs.COMMANDS,
    *reliability.COMMANDS,
    keys.keys,
    config.config,
    flower.flower,
):
    cli.add_command(command)
cli.add_command(schedules.schedules)
for command in queues.COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli()
