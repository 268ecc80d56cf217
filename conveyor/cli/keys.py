"""`conveyor keys`: manage API keys (stored hashed; shown once)."""

from __future__ import annotations

import click

from conveyor.cli.common import Env, settings_or_exit
from conveyor.keys import SCOPES, create_key


@click.group()
def keys() -> None:
    """Create and list API keys."""


@keys.command("create")
@click.option("--name", default="default", show_default=True, help="A label for the key.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPES),
    default=("write",),
    show_default=True,
    help="read: GET only; write: submit/cancel too; admin: everything. Repeatable.",
)
def create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key and print it once: only its hash is stored."""
    env = Env(settings_or_exit())
    plain, key = create_key(env.migrated_store(), name, scopes)
    click.echo(plain)
    click.echo(f"created key {key.prefix}… ({name}, scopes: {', '.join(key.scopes)})", err=True)


@keys.command("list")
def list_keys() -> None:
    """List keys (name, prefix, scopes, created, revoked) — never the keys themselves."""
    env = Env(settings_or_exit())
    for key in env.migrated_store().list_api_keys():
        revoked = f" revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else ""
        click.echo(
            f"{key.id}  {key.prefix}…  {key.name}  [{','.join(key.scopes)}]"
            f"  {key.created_at:%Y-%m-%d}{revoked}"
        )
