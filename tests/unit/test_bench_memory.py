"""The memory workload's figures from its RSS samples (bench/suite/workloads/memory.py)."""

from __future__ import annotations

from bench.suite.goals import evaluate
from bench.suite.model import Results
from bench.suite.report import section
from bench.suite.workloads.memory import _measurements
from tests.unit.test_bench_report import info


def test_growth_of_main_process_children_and_total_between_first_and_last_sample() -> None:
    samples = [(1_000, 100.0, 200.0), (10_000, 101.0, 205.0), (100_000, 103.0, 199.0)]
    found = {m.metric: m for m in _measurements("conveyor", samples, ["a caveat"])}
    assert found["rss_start_mb"].values == [300.0]
    assert found["rss_main_start_mb"].values == [100.0]
    assert found["rss_children_start_mb"].values == [200.0]
    assert found["rss_growth_mb"].values == [2.0]
    assert found["rss_main_growth_mb"].values == [3.0]
    assert found["rss_children_growth_mb"].values == [-1.0]
    assert found["jobs"].values == [100_000.0]
    growth = found["rss_growth_mb"]
    assert "over 99,000 jobs" in growth.notes
    assert "a caveat" in growth.notes
    assert (
        "RSS MB at 1k: 100+200, 10k: 101+205, 100k: 103+199 (main process + pool children)"
        in growth.notes
    )
    assert found["rss_main_growth_mb"].notes == ["a caveat", "over 99,000 jobs"]


def test_memory_section_and_goal_in_the_report() -> None:
    samples = [(1_000, 100.0, 200.0), (100_000, 103.0, 199.0)]
    results = Results(_measurements("conveyor", samples, []))
    goals = evaluate(results)
    memory = next(g for g in goals if g.name == "Worker memory")
    assert memory.met is True
    assert memory.figure == "+2.0 MB from 300 MB over 99,000 jobs"
    text = section(results, goals, info(), None)
    assert "### 6. Worker memory over 100,000 jobs" in text
    assert "**rss_main_growth_mb**" in text
