"""The suite's markdown section of docs/benchmarks.md (bench/suite/report.py)."""

from __future__ import annotations

from bench.suite.goals import evaluate
from bench.suite.model import Measurement, Results
from bench.suite.report import (
    BEGIN,
    END,
    HEADING,
    RunInfo,
    cell,
    chart_series,
    metric_table,
    replace_section,
    section,
    workload_notes,
)


def m(queue: str, variant: str, values: list[float], **extra: object) -> Measurement:
    return Measurement("io", "rate", queue, variant, "jobs/s", True, list(values), **extra)  # type: ignore[arg-type]


def results() -> Results:
    return Results(
        [
            m("conveyor", "prefork", [180, 190, 200]),
            m("conveyor", "threads", [800]),
            m("celery", "prefork", [200]),
            m("celery", "threads", [1000]),
            m("rq", "prefork", [100], notes=["stopped at 10 of 20 jobs"]),
            m("rq", "threads", [], na="RQ has no thread worker"),
            m("huey", "threads", [400]),
            m("conveyor", "chosen pool", [850], notes=["chosen pool: gevent -c 100"]),
        ]
    )


def info() -> RunInfo:
    return RunInfo(
        date="2026-11-21 05:00 UTC", machine="2 vCPU", load_before="1.00 / 1.00 / 1.00",
        load_after="2.00 / 1.50 / 1.00", duration_s=600, profile="full, 3 repetition(s)",
        versions={"conveyor": "conveyor 0.1.0"}, flags={"celery": "`-c 2`"},
        sizes={"no-op jobs": "20,000"},
    )  # fmt: skip


def test_cell_shows_median_spread_na_and_caveat_mark() -> None:
    assert cell(m("x", "p", [180, 190, 200])) == "190 (180-200)"
    assert cell(m("x", "p", [2.5])) == "2.50"
    assert cell(m("x", "p", [], na="no threads")) == "n/a"
    assert cell(m("x", "p", [100], notes=["partial"])).endswith("†")
    assert cell(None) == "—"


def test_metric_table_rows_columns_and_ratios() -> None:
    lines = metric_table(results(), "io", "rate")
    table = "\n".join(lines)
    assert "| Queue | prefork | threads |" in table
    assert "| conveyor | 190 (180-200) | 800 |" in table
    assert "| rq | 100 † | n/a |" in table
    assert "| *conveyor ÷ plain Celery* | 0.95x | 0.80x |" in table
    assert "| *conveyor ÷ best peer* | 1.90x (rq) | 2.00x (huey) |" in table
    notes = workload_notes(results(), "io")
    assert "† rq: stopped at 10 of 20 jobs  " in notes
    assert "n/a rq: RQ has no thread worker  " in notes
    assert "† rq" not in table  # caveats are listed once per workload, not per table


def test_section_holds_goals_run_description_and_chart() -> None:
    text = section(results(), evaluate(results()), info(), "img/benchmarks.png")
    assert "### Goals (issue #11)" in text
    assert (
        "| I/O-bound (10 ms sleeps) | >= best peer (conveyor: the pool it picks for an I/O "
        "queue) | 850/s (chosen pool) vs 400/s (huey, threads)" in text
    )
    assert "| conveyor | 190 (180-200) | 800 | 850 † |" in text
    assert "| celery | 200 | 1,000 | — |" in text
    assert (
        "| Load average (1/5/15 min) | before 1.00 / 1.00 / 1.00; after 2.00 / 1.50 / 1.00 |"
        in text
    )
    assert "| Flags: celery | `-c 2` |" in text
    assert "![conveyor vs plain Celery vs peers](img/benchmarks.png)" in text
    assert "### 3. I/O-bound jobs (sleep 10 ms)" in text
    assert "### 1. No-op jobs" not in text  # no figures, no heading


def test_replace_section_touches_only_the_text_between_markers() -> None:
    doc = (
        f"# Benchmarks\n\n## Worker hot path\nkeep\n\n{HEADING}\n\n"
        f"{BEGIN}\nold\n{END}\n\n## After\nkeep too\n"
    )
    new = replace_section(doc, "new\n")
    assert new == doc.replace("old\n", "new\n")
    appended = replace_section("# Benchmarks\n\n## Other\ntext\n", "body\n")
    assert appended.endswith(f"## Other\ntext\n\n{HEADING}\n\n{BEGIN}\nbody\n{END}\n")
    assert replace_section(appended, "body\n") == appended


def test_chart_series_by_variant_then_queue() -> None:
    series = chart_series(results(), "io", "rate")
    assert series["prefork"] == {"conveyor": 190, "celery": 200, "rq": 100}
    assert series["threads"] == {"conveyor": 800, "celery": 1000, "huey": 400}


def test_ratio_rows_are_left_out_when_nothing_compares() -> None:
    only_mine = Results([Measurement("api", "batch_rate", "conveyor", "b", "jobs/s", True, [5])])
    table = "\n".join(metric_table(only_mine, "api", "batch_rate"))
    assert "| conveyor | 5.00 |" in table
    assert "÷" not in table
