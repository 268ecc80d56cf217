"""`conveyor queues list | pause NAME | resume NAME`."""

from __future__ import annotations

import click

from conveyor.cli.common import Env, echo_json, settings_or_exit
from conveyor.queues import QueueInfo, UnknownQueue, list_queues, set_paused


def _row(info: QueueInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "depth": info.depth,
        "paused": info.paused,
        "consumers": info.consumers,
        "priorities": info.priorities,
    }


@click.group()
def queues() -> None:
    """List queues, pause and resume them (workers follow within a few seconds)."""


@queues.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(as_json: bool) -> None:
    """Every configured queue: depth (messages waiting), paused, consumers."""
    env = Env(settings_or_exit())
    infos = list_queues(env.settings, env.migrated_store(), env.app)
    if as_json:
        echo_json([_row(info) for info in infos])
        return
    click.echo(f"{'QUEUE':<20} {'DEPTH':>7} {'STATE':<8} CONSUMERS")
    for info in infos:
        depth = "?" if info.depth is None else str(info.depth)
        state = "paused" if info.paused else "active"
        click.echo(f"{info.name:<20} {depth:>7} {state:<8} {', '.join(info.consumers) or '-'}")


def _set(name: str, paused: bool) -> None:
    env = Env(settings_or_exit())
    try:
        set_paused(env.settings, env.migrated_store(), name, paused)
    except UnknownQueue as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name}: {'paused' if paused else 'resumed'}")


@queues.command()
@click.argument("name")
def pause(name: str) -> None:
    """Stop workers taking jobs from queue NAME (jobs wait in it)."""
    _set(name, True)


@queues.command()
@click.argument("name")
def resume(name: str) -> None:
    """Let workers take jobs from queue NAME again."""
    _set(name, False)
