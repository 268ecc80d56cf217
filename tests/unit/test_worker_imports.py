"""What `conveyor worker` loads: never the API, the dashboard or uvicorn (nor the
optional cryptography bindings), whose modules would sit in the memory of the
worker and of every pool child it forks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conveyor.cli import COMMANDS, cli
from tests.support.procs import run_python

#: modules a worker process must not hold
UNWANTED = (
    "fastapi",
    "starlette",
    "uvicorn",
    "conveyor.api",
    "conveyor.dashboard",
    "conveyor.server",
    "cryptography.hazmat.bindings",
    # Celery's command-line plugins and REPL (loaded by app.worker_main)
    "flower",
    "tornado",
    "prompt_toolkit",
)
#: what `conveyor worker` does before Celery's worker_main: the command, settings, the
#: app with the catalog and the user's task modules
WORKER_START = (
    "import json, sys\n"
    "from conveyor.cli import cli\n"
    "from conveyor.cli.common import Env, settings_or_exit\n"
    "cli.get_command(None, 'worker')\n"
    "Env(settings_or_exit()).app\n"
    "print(json.dumps(sorted(sys.modules)))\n"
)


def _loaded(code: str, tmp_path: Path) -> list[str]:
    result = run_python(code, CONVEYOR_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    modules: list[str] = json.loads(result.stdout.splitlines()[-1])
    return modules


def _unwanted(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == u or m.startswith(u + ".") for u in UNWANTED)]


def test_the_worker_does_not_import_the_api_or_the_dashboard(tmp_path: Path) -> None:
    assert _unwanted(_loaded(WORKER_START, tmp_path)) == []


def test_conveyor_worker_starts_celerys_worker_without_its_cli_plugins(tmp_path: Path) -> None:
    """The real `conveyor worker` command, up to the point where Celery's worker starts:
    the options reach Celery's worker, and nothing unwanted is loaded."""
    code = (
        "import json, sys\n"
        "from celery.worker import WorkController\n"
        "from conveyor.cli import main\n"
        "from conveyor.cli.common import Env, settings_or_exit\n"
        "Env(settings_or_exit()).store.migrate()\n"
        "def start(self):\n"
        "    print(json.dumps({'pool': self.pool_cls.__module__,\n"
        "                      'concurrency': self.concurrency,\n"
        "                      'heartbeat': self.app.conf.broker_heartbeat,\n"
        "                      'hostname': self.hostname}))\n"
        "    print(json.dumps(sorted(sys.modules)))\n"
        "WorkController.start = start\n"
        "sys.argv = ['conveyor', 'worker', '-P', 'solo', '-n', 'probe@%h', '-c', '3',\n"
        "            '--without-heartbeat', '--', 'broker_heartbeat=7']\n"
        "main()\n"
    )
    result = run_python(code, CONVEYOR_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout.splitlines()[-2])
    assert started["pool"] == "celery.concurrency.solo"
    assert started["concurrency"] == 3
    assert started["hostname"].startswith("probe@")
    assert started["heartbeat"] == 7  # extra arguments still reach `celery worker`
    assert _unwanted(json.loads(result.stdout.splitlines()[-1])) == []


def test_the_api_command_still_loads_the_server(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from conveyor.cli import cli\n"
        "cli.get_command(None, 'api')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert "conveyor.server" in _loaded(code, tmp_path)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_loads_and_answers_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_the_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert f"  {name} " in result.output


def test_an_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code != 0
    assert "No such command" in result.output
