"""Which settings switch Flower's authentication on (``conveyor flower`` refuses otherwise)."""

from __future__ import annotations

from typing import Any

import click
import pytest

from conveyor.cli.flower import flower_auth_env
from conveyor.settings import load_settings


def _env(**values: Any) -> dict[str, str]:
    return flower_auth_env(load_settings(**values))


def test_basic_auth_from_user_and_password() -> None:
    assert _env(flower_user="ops", flower_password="long-enough") == {
        "FLOWER_BASIC_AUTH": "ops:long-enough"
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "refusing to start Flower without authentication"),
        ({"flower_user": "ops"}, "set both"),
        ({"flower_password": "long-enough"}, "set both"),
        ({"flower_user": "ops", "flower_password": "short"}, "at least 8"),
        ({"flower_user": "o:ps", "flower_password": "long-enough"}, "may not contain"),
        ({"flower_oauth_provider": "flower.views.auth.GithubLoginHandler"}, "refusing"),
    ],
)
def test_refused(values: dict[str, str], message: str) -> None:
    with pytest.raises(click.ClickException, match=message):
        _env(**values)


def test_oauth_passthrough() -> None:
    env = _env(
        flower_oauth_provider="flower.views.auth.GithubLoginHandler",
        flower_oauth_key="id",
        flower_oauth_secret="secret",
        flower_oauth_redirect_uri="http://127.0.0.1:5555/login",
        flower_auth=r".*@example\.com",
    )
    assert env["FLOWER_AUTH_PROVIDER"] == "flower.views.auth.GithubLoginHandler"
    assert env["FLOWER_OAUTH2_KEY"] == "id"
    assert env["FLOWER_AUTH"] == r".*@example\.com"
    assert "FLOWER_BASIC_AUTH" not in env
