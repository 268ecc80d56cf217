"""``conveyor schedules``: list, add, edit, pause, resume, run and delete schedules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from conveyor.cli.common import Env, echo_json, parse_json, settings_or_exit
from conveyor.errors import ConveyorError
from conveyor.schedule_manager import ScheduleManager
from conveyor.schedules import Schedule, ScheduleSpec

F = TypeVar("F", bound=Callable[..., Any])


def _manager() -> ScheduleManager:
    env = Env(settings_or_exit())
    return ScheduleManager(env.migrated_store(), env.submitter)


@contextmanager
def _errors() -> Iterator[None]:
    """conveyor's and pydantic's errors as one-line CLI errors."""
    try:
        yield
    except ValidationError as exc:
        messages = [
            f"{'.'.join(str(p) for p in e['loc']) or 'schedule'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        ]
        raise click.ClickException("invalid schedule: " + "; ".join(messages)) from None
    except ConveyorError as exc:
        details = getattr(exc, "errors", None)
        extra = ""
        if details:
            extra = ": " + "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in details
            )
        raise click.ClickException(f"{exc}{extra}") from None


def _timing(text: Schedule) -> str:
    if text.cron is not None:
        return f"cron {text.cron} ({text.timezone})"
    if text.interval is not None:
        return f"every {text.interval:g}s"
    return f"at {text.at.isoformat() if text.at else '-'}"


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def definition_options(fn: F) -> F:
    """The options of `add` and `edit` (in `edit` every one is optional)."""
    options = [
        click.option("--cron", default=None, help="Cron expression 'm h dom mon dow'."),
        click.option("--interval", type=float, default=None, help="Every this many seconds."),
        click.option("--at", "at", default=None, help="Once, at this ISO time (UTC if naive)."),
        click.option("--timezone", default=None, help="IANA time zone of --cron [UTC]."),
        click.option("--args", "args_json", default=None, help="Positional args, a JSON list."),
        click.option("--kwargs", "kwargs_json", default=None, help="Keyword args, JSON object."),
        click.option("--queue", default=None, help="Queue instead of the task's."),
        click.option("--priority", type=click.IntRange(0, 9), default=None, help="0 (low) to 9."),
        click.option(
            "--missed",
            type=click.Choice(["skip", "run_once"]),
            default=None,
            help="A run missed while no scheduler ran: skip it [default] or run it once.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _changes(values: dict[str, Any]) -> dict[str, Any]:
    """ScheduleSpec fields from the given CLI options (only those given)."""
    changes: dict[str, Any] = {
        key: values[key]
        for key in ("cron", "interval", "at", "timezone", "missed")
        if values.get(key) is not None
    }
    if values.get("args_json") is not None:
        changes["args"] = parse_json(values["args_json"], "--args", list)
    if values.get("kwargs_json") is not None:
        changes["kwargs"] = parse_json(values["kwargs_json"], "--kwargs", dict)
    options = {k: values[k] for k in ("queue", "priority") if values.get(k) is not None}
    if options:
        changes["options"] = options
    return changes


@click.group()
def schedules() -> None:
    """Periodic schedules, stored in the job store and edited live."""


@schedules.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_(as_json: bool) -> None:
    """Every schedule with its timing, next and last run."""
    found = _manager().list()
    if as_json:
        echo_json([s.to_dict() for s in found])
        return
    if not found:
        click.echo("no schedules")
    for s in found:
        state = "enabled" if s.enabled else "paused"
        click.echo(
            f"{s.name}  {s.task}  {_timing(s)}  {state}  origin={s.origin}  "
            f"next={_when(s.next_run_at)}  last={_when(s.last_run_at)}"
        )


@schedules.command()
@click.argument("name")
@click.argument("task_name", metavar="TASK")
@definition_options
@click.option("--disabled", is_flag=True, help="Create it paused.")
def add(name: str, task_name: str, disabled: bool, **values: Any) -> None:
    """Create schedule NAME running TASK, e.g. `add digest email.digest --cron '0 8 * * *'`."""
    with _errors():
        spec = ScheduleSpec.model_validate(
            {"task": task_name, "enabled": not disabled, **_changes(values)}
        )
        echo_json(_manager().create(name, spec).to_dict())


@schedules.command()
@click.argument("name")
@click.option("--task", "task_name", default=None, help="Run another task.")
@definition_options
def edit(name: str, task_name: str | None, **values: Any) -> None:
    """Change schedule NAME; the running scheduler picks the change up within a second."""
    changes = _changes(values)
    if task_name is not None:
        changes["task"] = task_name
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    with _errors():
        echo_json(_manager().update(name, changes).to_dict())


@schedules.command()
@click.argument("name")
def pause(name: str) -> None:
    """Stop submitting NAME's jobs until it is resumed."""
    with _errors():
        echo_json(_manager().pause(name).to_dict())


@schedules.command()
@click.argument("name")
def resume(name: str) -> None:
    """Resume NAME from its next due time (missed runs are not caught up)."""
    with _errors():
        echo_json(_manager().resume(name).to_dict())


@schedules.command()
@click.argument("name")
def run(name: str) -> None:
    """Submit NAME's job now and print it (the periodic timing is unchanged)."""
    with _errors():
        echo_json(_manager().run_now(name).to_dict())


@schedules.command()
@click.argument("name")
def delete(name: str) -> None:
    """Delete schedule NAME."""
    with _errors():
        _manager().delete(name)
    click.echo(f"schedule {name} deleted")
