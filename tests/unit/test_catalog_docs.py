"""docs/catalog.md is generated from the task specs; it must match them."""

from __future__ import annotations

from pathlib import Path

from conveyor.catalog.docs import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"

ISSUE_TASKS = (
    "email.send",
    "email.send_bulk",
    "telegram.send_message",
    "sms.send",
    "push.send",
    "webhook.post",
    "http.request",
    "data.import_csv",
    "reports.generate",
    "maintenance.purge_rows",
    "maintenance.refresh_views",
    "maintenance.analyze",
    "maintenance.backup",
    "maintenance.clean_files",
    "maintenance.prune_jobs",
    "health.check",
)


def test_docs_catalog_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/catalog.md is out of date: run `python -m conveyor.catalog.docs > docs/catalog.md`"
    )


def test_every_task_of_the_issue_is_documented_with_queue_and_retry() -> None:
    text = render()
    for name in ISSUE_TASKS:
        section = text.split(f"### `{name}`", 1)
        assert len(section) == 2, name
        body = section[1].split("### ", 1)[0]
        assert "| queue |" in body and "| retry |" in body and "Parameters:" in body, name
