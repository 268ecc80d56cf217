"""The ``conveyor`` command.

Each command's module is imported only when that command runs (or ``--help`` lists
them all): ``conveyor worker`` never loads the API, the dashboard or uvicorn, whose
modules would otherwise sit in the memory of the worker and of every pool child.
"""

from __future__ import annotations

import importlib

import click

#: command name -> "module:attribute" of its click command, in the order `--help` lists them
COMMANDS = {
    "up": "conveyor.cli.service:up",
    "api": "conveyor.cli.service:api",
    "worker": "conveyor.cli.worker:worker",
    "scheduler": "conveyor.cli.scheduler:scheduler",
    "migrate": "conveyor.cli.service:migrate",
    "submit": "conveyor.cli.jobs:submit",
    "job": "conveyor.cli.jobs:job",
    "dlq": "conveyor.cli.reliability:dlq",
    "cancel": "conveyor.cli.reliability:cancel",
    "keys": "conveyor.cli.keys:keys",
    "config": "conveyor.cli.config:config",
    "flower": "conveyor.cli.flower:flower",
    "schedules": "conveyor.cli.schedules:schedules",
    "queues": "conveyor.cli.queues:queues",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported by name, when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="conveyor")
def cli() -> None:
    """conveyor — a background job service built on Celery.

    Start everything on this machine with `conveyor up`; configure with
    CONVEYOR_* environment variables or ./conveyor.toml.
    """


def main() -> None:
    cli()
