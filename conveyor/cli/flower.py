"""``conveyor flower``: Celery's Flower for the same app and broker, never without auth."""

from __future__ import annotations

import os
import sys

import click

from conveyor.cli.common import Env, settings_or_exit
from conveyor.settings import Settings

NO_CREDENTIALS = (
    "refusing to start Flower without authentication: set CONVEYOR_FLOWER_USER and "
    "CONVEYOR_FLOWER_PASSWORD (basic auth), or CONVEYOR_FLOWER_OAUTH_PROVIDER, "
    "CONVEYOR_FLOWER_OAUTH_KEY, CONVEYOR_FLOWER_OAUTH_SECRET, CONVEYOR_FLOWER_OAUTH_REDIRECT_URI "
    "and CONVEYOR_FLOWER_AUTH (OAuth). There is no default password."
)
MIN_PASSWORD_LENGTH = 8


def _oauth_env(settings: Settings) -> dict[str, str] | None:
    values = {
        "FLOWER_AUTH_PROVIDER": settings.flower_oauth_provider,
        "FLOWER_OAUTH2_KEY": settings.flower_oauth_key,
        "FLOWER_OAUTH2_SECRET": settings.flower_oauth_secret,
        "FLOWER_OAUTH2_REDIRECT_URI": settings.flower_oauth_redirect_uri,
        "FLOWER_AUTH": settings.flower_auth,
    }
    return values if all(values.values()) else None


def _basic_auth_env(settings: Settings) -> dict[str, str] | None:
    user, password = settings.flower_user, settings.flower_password
    if not user and not password:
        return None
    if not user or not password:
        raise click.ClickException(
            "set both CONVEYOR_FLOWER_USER and CONVEYOR_FLOWER_PASSWORD (only one is set)"
        )
    if ":" in user or "," in user or "," in password:
        raise click.ClickException(
            "CONVEYOR_FLOWER_USER may not contain ':' or ',' and "
            "CONVEYOR_FLOWER_PASSWORD may not contain ','"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(
            f"CONVEYOR_FLOWER_PASSWORD must be at least {MIN_PASSWORD_LENGTH} characters long"
        )
    return {"FLOWER_BASIC_AUTH": f"{user}:{password}"}


def flower_auth_env(settings: Settings) -> dict[str, str]:
    """The FLOWER_* variables that switch authentication on; raises when none is configured."""
    auth = _basic_auth_env(settings) or _oauth_env(settings)
    if auth is None:
        raise click.ClickException(NO_CREDENTIALS)
    return auth


@click.command()
@click.option("--host", default=None, help="Interface to listen on [CONVEYOR_FLOWER_HOST].")
@click.option("--port", type=int, default=None, help="Port [CONVEYOR_FLOWER_PORT].")
def flower(host: str | None, port: int | None) -> None:
    """Start Flower (Celery's monitoring UI) on conveyor's broker, with authentication.

    Credentials come from CONVEYOR_FLOWER_USER/CONVEYOR_FLOWER_PASSWORD (basic auth)
    or the CONVEYOR_FLOWER_OAUTH_* settings; without them it refuses to start.
    Credentials are passed through the environment, never on the command line.
    """
    env = Env(settings_or_exit())
    settings = env.settings
    os.environ.update(flower_auth_env(settings))
    argv = [
        "flower",
        f"--address={host or settings.flower_host}",
        f"--port={port or settings.flower_port}",
    ]
    sys.exit(env.app.start(argv) or 0)
