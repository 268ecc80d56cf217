"""`conveyor config`: show the effective settings, or their documentation."""

from __future__ import annotations

import click

from conveyor.cli.common import echo_json, settings_or_exit
from conveyor.settings_doc import render_settings_doc


@click.command()
@click.option("--docs", is_flag=True, help="Print the Markdown reference of every setting.")
def config(docs: bool) -> None:
    """Print the effective configuration (API keys masked) as JSON."""
    if docs:
        click.echo(render_settings_doc(), nl=False)
        return
    settings = settings_or_exit()
    data = settings.model_dump(mode="json")
    data["api_keys"] = [key[:4] + "…" for key in settings.api_keys]
    for secret in ("secret_key", "dashboard_password"):
        data[secret] = "…" if data[secret] else ""
    data["effective_broker_url"] = settings.effective_broker_url
    data["effective_database_url"] = settings.effective_database_url
    echo_json(data)
