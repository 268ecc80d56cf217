"""What every command needs: settings (with a one-line error), logging, store, app."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import click
from celery import Celery

from conveyor.engine import create_app, import_task_modules
from conveyor.logs import configure_logging
from conveyor.sentry import init_sentry
from conveyor.settings import Settings, SettingsError, load_settings
from conveyor.store import JobStore, StoreError, open_store
from conveyor.submit import Submitter


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings)
    try:
        init_sentry(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


@dataclass
class Env:
    """Lazily opened resources for one command run."""

    settings: Settings

    @cached_property
    def store(self) -> JobStore:
        return open_store(self.settings)

    @cached_property
    def app(self) -> Celery:
        import_task_modules(self.settings)
        return create_app(self.settings)

    @cached_property
    def submitter(self) -> Submitter:
        return Submitter(self.settings, self.migrated_store(), self.app)

    def migrated_store(self) -> JobStore:
        try:
            if not self.store.is_migrated():
                raise click.ClickException(
                    "the job store is not migrated: run `conveyor migrate` (or `conveyor up`)"
                )
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
        return self.store


def parse_json(value: str | None, what: str, kind: type) -> Any:
    if value is None:
        return kind()
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=what) from None
    if not isinstance(parsed, kind):
        raise click.BadParameter(f"must be a JSON {kind.__name__}", param_hint=what)
    return parsed


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
