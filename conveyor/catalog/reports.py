"""``reports.generate``: CSV or HTML (with an inline SVG bar chart) into CONVEYOR_REPORTS_DIR.

Report kinds (``kind``) turn ``params`` into a table — a title, column names, rows
and optionally which columns to chart:

* ``table`` — the caller's own data: ``{"title", "columns": [...], "rows": [[...]|{...}],
  "chart": {"label": <column>, "value": <column>}}``.
* ``jobs_summary`` — how many jobs per task and state in a conveyor job store
  (``params.database_url``, default: this conveyor's store), optionally only those
  created within ``params.since`` (a duration such as ``"7d"``); or, given
  ``params.rows`` as ``[{"task", "state", "count"}]``, a summary of those rows.

The file is ``<kind>-<UTC timestamp>-<job id>.csv|html``; the result holds its
path and size in bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select

from conveyor.catalog.common import Duration, settings
from conveyor.catalog.database import db_errors, engine_for, existing_table
from conveyor.catalog.svgchart import bar_chart
from conveyor.context import current_job_id, progress
from conveyor.errors import PermanentError
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task


@dataclass(frozen=True)
class Report:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    chart: tuple[int, int] | None = None  # (label column, value column)


class ChartSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    value: str


class TableParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = "Report"
    columns: list[str] = Field(min_length=1, max_length=100)
    rows: list[list[Any] | dict[str, Any]] = Field(max_length=1_000_000)
    chart: ChartSpec | None = None


class SummaryRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: str
    state: str
    count: int = Field(ge=0)


class JobsSummaryParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = "Jobs by task and state"
    database_url: str | None = None
    since: Duration | None = None
    rows: list[SummaryRow] | None = None


def _chart_columns(columns: list[str], chart: ChartSpec | None) -> tuple[int, int] | None:
    if chart is None:
        return None
    for name in (chart.label, chart.value):
        if name not in columns:
            raise PermanentError(f"chart column {name!r} is not one of {columns}")
    return columns.index(chart.label), columns.index(chart.value)


def table_report(params: dict[str, Any]) -> Report:
    spec = TableParams.model_validate(params)
    rows = [
        [row.get(c) for c in spec.columns] if isinstance(row, dict) else list(row)
        for row in spec.rows
    ]
    for number, row in enumerate(rows, start=1):
        if len(row) != len(spec.columns):
            raise PermanentError(f"row {number} has {len(row)} values, not {len(spec.columns)}")
    return Report(spec.title, spec.columns, rows, _chart_columns(spec.columns, spec.chart))


def _summary_from_database(spec: JobsSummaryParams) -> list[SummaryRow]:
    engine = engine_for(spec.database_url)
    jobs = existing_table(engine, "jobs")
    query = select(jobs.c.task, jobs.c.state, func.count()).group_by(jobs.c.task, jobs.c.state)
    if spec.since is not None:
        cutoff = datetime.now(UTC) - spec.since
        if engine.dialect.name == "sqlite":
            cutoff = cutoff.replace(tzinfo=None)
        query = query.where(jobs.c.created_at >= cutoff)
    with db_errors(), engine.connect() as conn:
        found = conn.execute(query).all()
    return [SummaryRow(task=t, state=s, count=c) for t, s, c in found]


def jobs_summary_report(params: dict[str, Any]) -> Report:
    spec = JobsSummaryParams.model_validate(params)
    rows = spec.rows if spec.rows is not None else _summary_from_database(spec)
    ordered = sorted(rows, key=lambda r: (r.task, r.state))
    table = [[r.task, r.state, r.count] for r in ordered]
    totals: dict[str, int] = {}
    for r in ordered:
        totals[r.task] = totals.get(r.task, 0) + r.count
    table += [[task_name, "ALL", count] for task_name, count in totals.items()]
    return Report(spec.title, ["task", "state", "count"], table, None)


KINDS: dict[str, Callable[[dict[str, Any]], Report]] = {
    "jobs_summary": jobs_summary_report,
    "table": table_report,
}


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(report.columns)
    writer.writerows(report.rows)
    return out.getvalue()


def _chart_items(report: Report) -> list[tuple[str, float]]:
    if report.chart is not None:
        label, value = report.chart
        rows = report.rows
    elif report.columns == ["task", "state", "count"]:
        label, value = 0, 2
        rows = [r for r in report.rows if r[1] == "ALL"]
    else:
        return []
    items = []
    for row in rows[:50]:
        try:
            items.append((str(row[label]), float(row[value])))
        except (TypeError, ValueError):
            continue
    return items


def render_html(report: Report) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in report.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in report.rows
    )
    items = _chart_items(report)
    chart = f'<figure class="chart">{bar_chart(report.title, items)}</figure>' if items else ""
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(report.title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>"
        f"<h1>{escape(report.title)}</h1><p>Generated {created}</p>{chart}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>\n"
    )


def _target(kind: str, fmt: str) -> Path:
    folder = settings().reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    job = (current_job_id() or "adhoc")[:36]
    return folder / f"{kind}-{stamp}-{job}.{fmt}"


@task(
    name="reports.generate",
    queue="data_processing",
    retry=RetryPolicy(max_retries=2, base_delay=30.0, retry_on=()),
    time_limit=1800,
    soft_time_limit=1740,
)
def generate(
    kind: Annotated[
        Literal["jobs_summary", "table"],
        Field(description="Report kind: jobs_summary or table (see above)."),
    ],
    params: Annotated[dict[str, Any] | None, Field(description="Input of the report kind.")] = None,
    format: Annotated[
        Literal["csv", "html"], Field(description="csv, or html with an inline SVG bar chart.")
    ] = "html",
) -> dict[str, Any]:
    """Build report ``kind`` from ``params`` and write it as CSV or HTML (with a bar chart)."""
    try:
        report = KINDS[kind](params or {})
    except ValidationError as exc:
        raise PermanentError(f"invalid params for report {kind!r}: {exc}") from exc
    progress(1, 2, "data collected")
    text = render_csv(report) if format == "csv" else render_html(report)
    path = _target(kind, format)
    path.write_text(text, encoding="utf-8")
    progress(2, 2, "written")
    return {"path": str(path.resolve()), "size": path.stat().st_size, "rows": len(report.rows)}
