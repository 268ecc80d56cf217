"""Email templates: Jinja2, one folder per template, one file per locale and part.

A template ``<name>`` is a folder holding ``<locale>.subject``, ``<locale>.txt`` and
``<locale>.html`` for each locale it supports. Built-in templates live in
``conveyor/catalog/templates/email/``; a folder in ``CONVEYOR_EMAIL_TEMPLATES_DIR``
with the same name wins. A locale without files falls back to ``en``.
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
    TemplateNotFound,
    TemplateSyntaxError,
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


def _render_part(env: Environment, path: str, context: dict[str, Any]) -> str | None:
    try:
        template = env.get_template(path)
    except TemplateNotFound:
        return None
    return template.render(**context).strip()


def _pick_locale(env: Environment, name: str, locale: str) -> str:
    for candidate in (locale, DEFAULT_LOCALE):
        try:
            env.get_template(f"{name}/{candidate}.txt")
        except TemplateNotFound:
            continue
        return candidate
    raise PermanentError(f"unknown email template {name!r} (no {name}/en.txt)")


def render(
    name: str, context: dict[str, Any], locale: str | None, user_dir: Path | None = None
) -> Rendered:
    """Render template ``name`` in ``locale`` (falling back to en); PermanentError if broken."""
    if "/" in name or "\\" in name or name.startswith("."):
        raise PermanentError(f"invalid template name {name!r}")
    env = _environment(str(user_dir) if user_dir else None)
    chosen = _pick_locale(env, name, normalize_locale(locale))
    values = {**context, "locale": chosen}
    try:
        text = _render_part(env, f"{name}/{chosen}.txt", values) or ""
        html = _render_part(env, f"{name}/{chosen}.html", values)
        subject = _render_part(env, f"{name}/{chosen}.subject", values) or ""
    except UndefinedError as exc:
        raise PermanentError(f"template {name!r} needs a context value: {exc}") from exc
    except TemplateSyntaxError as exc:
        raise PermanentError(f"template {name!r} is broken: {exc}") from exc
    return Rendered(subject=" ".join(subject.split()), text=text, html=html, locale=chosen)
