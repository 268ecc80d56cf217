"""The suite's section of docs/benchmarks.md: tables, ratios, goals (pure), and the chart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.suite.goals import Goal
from bench.suite.model import CELERY, CONVEYOR, QUEUES, Measurement, Results, best_peer, ratio

HEADING = "## Suite: conveyor vs plain Celery vs peers"
BEGIN = "<!-- suite:begin -->"
END = "<!-- suite:end -->"

#: workload -> (title, what it measures)
WORKLOADS: dict[str, tuple[str, str]] = {
    "throughput": (
        "1. No-op jobs",
        "enqueue rate from one producer, drain rate (first start -> last completion), worker RSS",
    ),
    "latency": ("2. Enqueue -> start latency", "single jobs on an idle worker"),
    "io": ("3. I/O-bound jobs (sleep 10 ms)", "throughput per pool"),
    "api": ("4. HTTP API", "single submits at a fixed rate, batch submits"),
    "delays": ("5. Long delays due at the same second", "due -> start of the last one; duplicates"),
    "memory": (
        "6. Worker memory over 100,000 jobs",
        "no-op jobs sent while the worker drains them (time-capped); RSS of the worker's main "
        "process and of its pool children after the first 1,000 jobs, every 10,000 and at the "
        "end",
    ),
}


@dataclass(frozen=True)
class RunInfo:
    """Everything that describes the run besides its figures."""

    date: str
    machine: str
    load_before: str
    load_after: str
    duration_s: float
    profile: str
    versions: Mapping[str, str]
    flags: Mapping[str, str]
    sizes: Mapping[str, str] = field(default_factory=dict)


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def cell(item: Measurement | None) -> str:
    """``median (min-max)`` of one measurement, or n/a with its reason."""
    if item is None:
        return "—"
    summary = item.summary()
    if summary is None:
        return "n/a" if item.na else "—"
    text = fmt(summary.median)
    if summary.runs > 1:
        text += f" ({fmt(summary.low)}-{fmt(summary.high)})"
    if item.notes:
        text += " †"
    return text


def metric_table(results: Results, workload: str, metric: str) -> list[str]:
    """Queues as rows, variants as columns, then conveyor's ratios to Celery and the best peer."""
    rows = results.rows(workload, metric)
    if not rows:
        return []
    variants = results.variants(workload, metric)
    sample = rows[0]
    better = "higher is better" if sample.higher_is_better else "lower is better"
    lines = [
        f"**{metric}** ({sample.unit}, {better}; median of the repetitions, min-max in brackets)",
        "",
        "| Queue | " + " | ".join(variants) + " |",
        "|---|" + "---:|" * len(variants),
    ]
    for queue in QUEUES:
        cells = [cell(results.get(workload, metric, queue, v)) for v in variants]
        if any(c != "—" for c in cells):
            lines.append(f"| {queue} | " + " | ".join(cells) + " |")
    mine = [results.median(workload, metric, CONVEYOR, v) for v in variants]
    if any(m is not None for m in mine):
        to_celery = [
            fmt_ratio(ratio(m, results.median(workload, metric, CELERY, v)))
            for m, v in zip(mine, variants, strict=True)
        ]
        to_peer = []
        for m, v in zip(mine, variants, strict=True):
            peer = best_peer(results, workload, metric, v)
            to_peer.append(f"{fmt_ratio(ratio(m, peer[2]))} ({peer[0]})" if peer else "—")
        if any(r != "—" for r in to_celery):
            lines.append("| *conveyor ÷ plain Celery* | " + " | ".join(to_celery) + " |")
        if any(r != "—" for r in to_peer):
            lines.append("| *conveyor ÷ best peer* | " + " | ".join(to_peer) + " |")
    return lines


def workload_notes(results: Results, workload: str) -> list[str]:
    """The caveats (†) and n/a reasons of every table of ``workload``, each listed once."""
    rows = [row for metric in results.metrics(workload) for row in results.rows(workload, metric)]
    notes = sorted({f"† {m.queue}: {n}" for m in rows for n in m.notes})
    reasons = sorted({f"n/a {m.queue}: {m.na}" for m in rows if m.na and not m.values})
    return [f"{line}  " for line in [*notes, *reasons]]


def goals_table(goals: Sequence[Goal]) -> list[str]:
    lines = ["| Goal | Target | Measured | Verdict |", "|---|---|---|---|"]
    for goal in goals:
        verdict = f"**{goal.verdict}**" if goal.met is False else goal.verdict
        lines.append(f"| {goal.name} | {goal.target} | {goal.figure} | {verdict} |")
    return lines


def run_table(info: RunInfo) -> list[str]:
    lines = [
        "| | |",
        "|---|---|",
        f"| Date | {info.date} |",
        f"| Machine | {info.machine} |",
        f"| Load average (1/5/15 min) | before {info.load_before}; after {info.load_after} |",
        f"| Profile | {info.profile}; whole suite {info.duration_s / 60:.1f} min |",
    ]
    lines += [f"| Size: {name} | {size} |" for name, size in info.sizes.items()]
    lines += [f"| Version: {name} | {version} |" for name, version in info.versions.items()]
    lines += [f"| Flags: {queue} | {flags} |" for queue, flags in info.flags.items()]
    return lines


def section(results: Results, goals: Sequence[Goal], info: RunInfo, chart: str | None) -> str:
    """The markdown between the suite's markers."""
    lines = [
        f"Generated by `make bench` (`python -m bench.suite`) on {info.date}; do not edit by "
        "hand. Every figure comes from this one run; ratios are conveyor's figure divided by "
        "the other one (for latencies and times, below 1 is better).",
        "",
        "Run it with `make bench` (about 20 minutes; `make bench BENCH_ARGS=--quick` for a "
        "short check). It installs the `bench` extra, uses the Redis database in "
        "`CONVEYOR_BENCH_REDIS_URL` (default `redis://127.0.0.1:6379/15`, **flushed** before "
        "every run) and a PostgreSQL database `conveyor_bench` (dropped and re-created) as "
        "conveyor's job store. Every queue runs as separate worker processes on that Redis; "
        "every task body makes the same one Redis round trip to report when it started and "
        "finished (`bench/suite/probe.py`). Drains are timed from the first job's start to "
        "the last job's end with the whole backlog queued before the workers start. A figure "
        "marked † carries a caveat listed under its workload's tables (e.g. a run stopped at "
        "its time cap: its rate is then over the jobs done). Worker logs of the last run: "
        "`var/bench/logs/`.",
        "",
        "### Goals (issue #11)",
        "",
        *goals_table(goals),
        "",
        "### The run",
        "",
        *run_table(info),
        "",
    ]
    if chart:
        lines += [f"![conveyor vs plain Celery vs peers]({chart})", ""]
    for workload, (title, what) in WORKLOADS.items():
        metrics = results.metrics(workload)
        if not metrics:
            continue
        lines += [f"### {title}", "", f"{what}.", ""]
        for metric in metrics:
            lines += [*metric_table(results, workload, metric), ""]
        notes = workload_notes(results, workload)
        if notes:
            lines += ["Notes:", "", *notes, ""]
    return "\n".join(lines).rstrip() + "\n"


def replace_section(document: str, body: str) -> str:
    """``document`` with the text between the markers replaced (the section appended if new)."""
    block = f"{BEGIN}\n{body}{END}"
    if BEGIN in document and END in document:
        head, rest = document.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + block + tail
    return document.rstrip() + f"\n\n{HEADING}\n\n{block}\n"


def write_doc(path: Path, body: str) -> None:
    path.write_text(replace_section(path.read_text(encoding="utf-8"), body), encoding="utf-8")


CHART_PANELS = (
    ("throughput", "drain_rate", "No-op drain (jobs/s)"),
    ("latency", "p50_ms", "Enqueue->start p50 (ms)"),
    ("io", "rate", "10 ms sleeps (jobs/s)"),
)


def chart_series(results: Results, workload: str, metric: str) -> dict[str, dict[str, float]]:
    """variant -> queue -> median, for the queues that have a figure (pure; feeds the chart)."""
    series: dict[str, dict[str, float]] = {}
    for variant in results.variants(workload, metric):
        for queue in QUEUES:
            value = results.median(workload, metric, queue, variant)
            if value is not None:
                series.setdefault(variant, {})[queue] = value
    return series


def draw_chart(results: Results, path: Path) -> None:
    """Grouped bars of the headline figures (matplotlib: in the bench extra only)."""
    import matplotlib  # noqa: PLC0415  (optional: the bench extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, len(CHART_PANELS), figsize=(15, 4.5))
    colors = {q: f"C{n}" for n, q in enumerate(QUEUES)}
    for axis, (workload, metric, title) in zip(axes, CHART_PANELS, strict=True):
        series = chart_series(results, workload, metric)
        width = 0.8 / len(QUEUES)
        for v_index, (_variant, values) in enumerate(series.items()):
            for q_index, queue in enumerate(QUEUES):
                if queue in values:
                    bars = axis.bar(
                        v_index + (q_index - len(QUEUES) / 2 + 0.5) * width,
                        values[queue],
                        width,
                        color=colors[queue],
                    )
                    axis.bar_label(bars, fmt="%.0f", fontsize=7)
        axis.set_xticks(range(len(series)), list(series))
        axis.set_xlim(-0.5, max(len(series), 1) - 0.5)
        axis.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[q]) for q in QUEUES]
    fig.legend(handles, list(QUEUES), loc="lower center", ncol=len(QUEUES))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
