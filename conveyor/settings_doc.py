"""Render the Settings reference (docs/configuration.md) from the Settings model itself."""

from __future__ import annotations

import json
from typing import Any

from pydantic.fields import FieldInfo

from conveyor.settings import ENV_PREFIX, Settings

HEADER = """# Configuration

Every setting is an environment variable `CONVEYOR_<NAME>` or a key `<name>` in
`conveyor.toml` (path: `CONVEYOR_CONFIG`, default `./conveyor.toml`).
Environment variables win over the file. Lists take `a,b,c` in the environment
and arrays in TOML; mappings take JSON in the environment and tables in TOML.
An invalid value stops every command with one line naming the setting.

This page is generated from the code: `conveyor config --docs > docs/configuration.md`.

| Environment variable | Default | Description |
|---|---|---|
"""


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if value in ("", None, [], {}):
        return "—"
    if isinstance(value, list):
        return "`" + ",".join(str(v) for v in value) + "`"
    if isinstance(value, dict):
        return "`" + json.dumps(value) + "`"
    return f"`{value}`"


def render_settings_doc() -> str:
    rows = [
        f"| `{ENV_PREFIX}{name.upper()}` | {_default(info)} | {info.description or ''} |"
        for name, info in Settings.model_fields.items()
    ]
    return HEADER + "\n".join(rows) + "\n"
