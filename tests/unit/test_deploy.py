"""The deployment files parse, and every command they name exists in the CLI with those options.

There is no Docker engine here, so the images are not built; what can be checked is checked.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from conveyor.cli import cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_VAR = re.compile(r"\$\{?([A-Z_]+)[^}\s]*\}?")


def _check_conveyor_command(argv: list[str]) -> None:
    """Parse ``argv`` (``conveyor ...``) with the real click commands; raises on a bad option."""
    assert argv[0].endswith("conveyor"), argv
    args = [_VAR.sub("8000", a) for a in argv[1:]]
    command: click.Command = cli
    while isinstance(command, click.Group):
        name, args = args[0], args[1:]
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"no such command: {name}"
        command = found
    command.make_context(command.name or "", list(args))


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def test_compose_file_parses_and_has_every_service() -> None:
    services = _compose()["services"]
    expected = {"redis", "rabbitmq", "postgres", "migrate", "api", "scheduler", "flower"}
    assert expected <= set(services)
    assert [s for s in services if s.startswith("worker-")]


def test_compose_commands_exist_in_the_cli() -> None:
    for name, service in _compose()["services"].items():
        command = service.get("command")
        if command and command[0] == "conveyor":
            try:
                _check_conveyor_command(command)
            except click.UsageError as exc:  # pragma: no cover - the failure message
                pytest.fail(f"service {name}: {exc}")


def test_compose_has_no_default_passwords() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    for secret in ("RABBITMQ_PASSWORD", "POSTGRES_PASSWORD", "FLOWER_PASSWORD", "API_KEYS"):
        for use in re.findall(r"\$\{[A-Z_]*" + secret + r"[^}]*\}", text):
            assert ":?" in use, f"{use} must be required, not defaulted"
    assert "admin123" not in text and "guest" not in text


def test_procfile_commands_exist_in_the_cli() -> None:
    entries = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        name, command = line.split(":", 1)
        entries[name] = shlex.split(command)
        _check_conveyor_command(entries[name])
    assert set(entries) == {"web", "worker", "beat"}


def test_systemd_and_supervisor_commands_exist_in_the_cli() -> None:
    commands = []
    for unit in (DEPLOY / "systemd").glob("*.service"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string(unit.read_text())
        service = parser["Service"]
        assert service["User"] == "conveyor"
        commands += [service["ExecStart"], service.get("ExecStartPre", "")]
    supervisor = configparser.ConfigParser(interpolation=None)
    supervisor.read(DEPLOY / "supervisor" / "conveyor.conf")
    commands += [supervisor[s]["command"] for s in supervisor.sections()]
    for command in filter(None, commands):
        _check_conveyor_command(shlex.split(command.replace("%i", "email")))


def test_scripts_use_existing_commands() -> None:
    for script in (DEPLOY / "scripts").glob("*.sh"):
        assert os.access(script, os.X_OK), script
        line = next(ln for ln in script.read_text().splitlines() if ln.startswith("exec "))
        argv = [a for a in shlex.split(line.removeprefix("exec ")) if not a.startswith("${")]
        _check_conveyor_command([a for a in argv if a != "$@"])


def test_dockerfile_runs_as_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0")
