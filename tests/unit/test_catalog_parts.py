"""Pure pieces of the catalog: durations, recipients, locales, templates, the SVG chart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from conveyor.catalog.common import Recipient, parse_duration
from conveyor.catalog.files import allowed_root
from conveyor.catalog.svgchart import bar_chart
from conveyor.catalog.templating import normalize_locale, render
from conveyor.context import JobContext, progress, running
from conveyor.errors import PermanentError
from conveyor.jobs import JobEvent


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90),
        (1.5, 1.5),
        ("45", 45),
        ("30d", 30 * 86400),
        ("1d12h", 36 * 3600),
        ("2w", 14 * 86400),
        ("90m", 5400),
        ("P30D", 30 * 86400),
        ("PT12H", 12 * 3600),
        ("P1DT30M", 86400 + 1800),
        (timedelta(hours=1), 3600),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value).total_seconds() == seconds


@pytest.mark.parametrize("value", ["", "a year", "30 days", "-5", 0, -1, "P", "d", True, None])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_recipient_checks_the_time_zone() -> None:
    assert Recipient(timezone="Europe/Prague").timezone == "Europe/Prague"
    with pytest.raises(ValidationError):
        Recipient(timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        Recipient.model_validate({"opted_out": True, "extra": 1})


@pytest.mark.parametrize(
    ("given", "expected"),
    [("ru", "ru"), ("uk-UA", "uk"), ("ru_RU", "ru"), ("EN", "en"), ("de", "en"), (None, "en")],
)
def test_locales(given: str | None, expected: str) -> None:
    assert normalize_locale(given) == expected


def test_own_templates_override_builtin_ones(tmp_path: Path) -> None:
    folder = tmp_path / "verification"
    folder.mkdir()
    (folder / "en.txt").write_text("Mine: {{ verification_link }}")
    (folder / "en.subject").write_text("Custom")
    mine = render("verification", {"verification_link": "L"}, "ru", tmp_path)
    # the whole folder replaces the built-in template: ru falls back to its en
    assert (mine.subject, mine.text, mine.html, mine.locale) == ("Custom", "Mine: L", None, "en")
    builtin = render("password_reset", {"username": "u", "reset_link": "L"}, "ru", tmp_path)
    assert builtin.text.startswith("Здравствуйте, u!")
    assert builtin.html is not None and '<html lang="ru">' in builtin.html
    with pytest.raises(PermanentError):
        render("../secrets", {}, "en")
    with pytest.raises(PermanentError):
        render("no_such_template", {}, "en")
    with pytest.raises(PermanentError):
        render("_layout.html", {}, "en")


def test_bar_chart_escapes_and_scales() -> None:
    svg = bar_chart("a<b", [("x&y", 10), ("z", 5), ("neg", -3)])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "a&lt;b" in svg and "x&amp;y" in svg
    assert 'width="420.0"' in svg and 'width="210.0"' in svg and 'width="0.0"' in svg


def test_allowed_root(tmp_path: Path) -> None:
    allowed = tmp_path / "tmp"
    (allowed / "a").mkdir(parents=True)
    assert allowed_root(str(allowed / "a"), [allowed]) == (allowed / "a").resolve()
    with pytest.raises(PermanentError):
        allowed_root(str(allowed / "a" / ".." / ".."), [allowed])
    with pytest.raises(PermanentError):
        allowed_root(str(allowed), [])


def test_progress_goes_to_the_jobs_recorder() -> None:
    seen: list[JobEvent] = []
    progress(1, 2)  # outside a job: nothing to report to, nothing happens
    with running(JobContext(job_id="p-1", task="t", attempt=1, report=seen.append)):
        progress(3, 10, "three")
    (event,) = seen
    assert event.job_id == "p-1"
    assert event.progress is not None
    assert (event.progress["done"], event.progress["total"]) == (3, 10)
    assert event.progress["message"] == "three"
