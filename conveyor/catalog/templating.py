"""Email templates: Jinja2, one folder per template, one file per locale and part.

A template ``<name>`` is a folder holding ``<locale>.subject``, ``<locale>.txt`` and
``<locale>.html`` for each locale it supports. Built-in templates live in
``conveyor/catalog/templates/email/``; a folder in ``CONVEYOR_EMAIL_TEMPLATES_DIR``
with the same name replaces the built-in one (all of it). A locale without files
falls back to ``en``. HTML parts may ``{% extends "_layout.html" %}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    UndefinedError,
    select_autoescape,
)

from conveyor.catalog.common import DEFAULT_LOCALE, LOCALES
from conveyor.errors import PermanentError

BUILTIN_DIR = Path(__file__).resolve().parent / "templates" / "email"
BUILTIN_TEMPLATES = (
    "daily_digest",
    "password_reset",
    "session_reminder",
    "verification",
    "weekly_report",
)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    locale: str


@lru_cache(maxsize=8)
def _environment(user_dir: str | None) -> Environment:
    loaders = [FileSystemLoader(user_dir)] if user_dir else []
    loaders.append(FileSystemLoader(str(BUILTIN_DIR)))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


def normalize_locale(locale: str | None) -> str:
    """``"ru-RU"``/``"ru_RU"`` → ``"ru"``; unknown or empty → ``"en"``."""
    base = (locale or "").replace("_", "-").split("-")[0].lower()
    return base if base in LOCALES else DEFAULT_LOCALE


def _render_part(env: Environment, folder: Path, part: str, context: dict[str, Any]) -> str | None:
    if not (folder / part).is_file():
        return None
    return env.get_template(f"{folder.name}/{part}").render(**context).strip()


def _template_folder(name: str, user_dir: Path | None) -> Path:
    """The folder of template ``name``: the user's own wins over the built-in one, whole."""
    if "/" in name or "\\" in name or name.startswith((".", "_")) or not name:
        raise PermanentError(f"invalid template name {name!r}")
    if user_dir is not None and (user_dir / name).is_dir():
        return user_dir / name
    if (BUILTIN_DIR / name).is_dir():
        return BUILTIN_DIR / name
    raise PermanentError(f"unknown email template {name!r}")


def _pick_locale(folder: Path, locale: str) -> str:
    for candidate in (locale, DEFAULT_LOCALE):
        if (folder / f"{candidate}.txt").is_file():
            return candidate
    raise PermanentError(f"email template {folder.name!r} has no {DEFAULT_LOCALE}.txt")


def render(
    name: str, context: dict[str, Any], locale: str | None, user_dir: Path | None = None
) -> Rendered:
    """Render template ``name`` in ``locale`` (falling back to en); PermanentError if broken."""
    folder = _template_folder(name, user_dir)
    env = _environment(str(user_dir) if user_dir else None)
    chosen = _pick_locale(folder, normalize_locale(locale))
    values = {**context, "locale": chosen}
    try:
        text = _render_part(env, folder, f"{chosen}.txt", values) or ""
        html = _render_part(env, folder, f"{chosen}.html", values)
        subject = _render_part(env, folder, f"{chosen}.subject", values) or ""
    except UndefinedError as exc:
        raise PermanentError(f"template {name!r} needs a context value: {exc}") from exc
    except TemplateError as exc:
        raise PermanentError(f"template {name!r} is broken: {exc}") from exc
    return Rendered(subject=" ".join(subject.split()), text=text, html=html, locale=chosen)
