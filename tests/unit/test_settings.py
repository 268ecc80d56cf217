from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conveyor.cli import cli
from conveyor.settings import Settings, SettingsError, load_settings
from conveyor.settings_doc import render_settings_doc


def test_embedded_defaults_live_under_var() -> None:
    settings = load_settings()
    assert settings.effective_broker_url == "filesystem://"
    assert settings.effective_database_url.endswith("var/conveyor.db")
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_result_backend.startswith("db+sqlite:///")
    assert settings.api_host == "127.0.0.1"
    assert settings.api_port == 8000
    assert settings.task_time_limit == 300
    assert settings.task_soft_time_limit == 240
    assert settings.worker_prefetch_multiplier == 4
    assert settings.worker_max_tasks_per_child == 1000
    assert settings.result_expires == 3600
    assert settings.api_keys == []


def test_environment_and_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("CONVEYOR_API_KEYS", "k" * 20 + ", " + "j" * 20)
    monkeypatch.setenv("CONVEYOR_ROUTES", '{"reports.*": "analytics"}')
    settings = load_settings()
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.api_keys == ["k" * 20, "j" * 20]
    assert settings.routes == {"reports.*": "analytics"}


def test_toml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "conveyor.toml"
    config.write_text('api_port = 9001\nlog_level = "DEBUG"\nqueues = ["default", "bulk"]\n')
    monkeypatch.setenv("CONVEYOR_CONFIG", str(config))
    monkeypatch.setenv("CONVEYOR_LOG_LEVEL", "WARNING")
    settings = load_settings()
    assert settings.api_port == 9001
    assert settings.queues == ["default", "bulk"]
    assert settings.log_level == "WARNING"


@pytest.mark.parametrize(
    ("env", "value", "fragment"),
    [
        ("CONVEYOR_API_PORT", "eighty", "CONVEYOR_API_PORT"),
        ("CONVEYOR_API_PORT", "70000", "CONVEYOR_API_PORT"),
        ("CONVEYOR_BROKER_URL", "kafka://x", "CONVEYOR_BROKER_URL"),
        ("CONVEYOR_API_KEYS", "short", "CONVEYOR_API_KEYS"),
        ("CONVEYOR_TASK_SOFT_TIME_LIMIT", "400", "task_soft_time_limit must be below"),
        ("CONVEYOR_DEFAULT_QUEUE", "nope", "default_queue 'nope' is not in queues"),
    ],
)
def test_invalid_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert fragment in message
    assert message.startswith("invalid setting")


def test_unknown_key_in_toml_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "conveyor.toml"
    config.write_text("api_prot = 1\n")
    monkeypatch.setenv("CONVEYOR_CONFIG", str(config))
    with pytest.raises(SettingsError, match="CONVEYOR_API_PROT"):
        load_settings()


def test_cli_stops_with_the_one_line_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_API_PORT", "eighty")
    result = CliRunner().invoke(cli, ["migrate"])
    assert result.exit_code != 0
    assert "invalid setting CONVEYOR_API_PORT" in result.output
    assert "Traceback" not in result.output


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md is generated; regenerate with `conveyor config --docs`."""
    path = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert path.read_text() == render_settings_doc()


def test_every_setting_is_documented() -> None:
    missing = [name for name, info in Settings.model_fields.items() if not info.description]
    assert missing == []
