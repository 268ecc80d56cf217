"""Ratios, the best peer and issue #11's goals (bench/suite/model.py, goals.py)."""

from __future__ import annotations

from bench.suite.goals import evaluate
from bench.suite.model import Measurement, Results, best_peer, ratio


def m(workload: str, metric: str, queue: str, variant: str, values: list[float],
      higher: bool = True, **extra: object) -> Measurement:  # fmt: skip
    return Measurement(workload, metric, queue, variant, "u", higher, list(values), **extra)  # type: ignore[arg-type]


def passing() -> Results:
    return Results(
        [
            m("throughput", "drain_rate", "conveyor", "default", [950, 900, 1000]),
            m("throughput", "drain_rate", "celery", "default", [1000]),
            m("throughput", "rss_start_mb", "conveyor", "default", [100], higher=False),
            m("throughput", "rss_growth_mb", "conveyor", "default", [2, 5], higher=False,
              notes=["over 19,000 jobs"]),
            m("latency", "p50_ms", "conveyor", "default", [3.5], higher=False),
            m("latency", "p50_ms", "celery", "default", [3.0], higher=False),
            m("io", "rate", "conveyor", "prefork", [190]),
            m("io", "rate", "conveyor", "gevent / asyncio", [1400]),
            m("io", "rate", "conveyor", "chosen pool", [1400]),
            m("io", "rate", "arq", "gevent / asyncio", [1300]),
            m("io", "rate", "rq", "prefork", [150]),
            m("io", "rate", "rq", "threads", [], na="no threads"),
            m("api", "single_p99_ms", "conveyor", "200 req/s", [12.0], higher=False),
            m("api", "batch_rate", "conveyor", "2 processes, 2 clients", [12_000]),
            m("api", "batch_rate", "conveyor", "1 process, 1 client", [7_000]),
            m("delays", "last_start_lag_s", "conveyor", "default", [1.5], higher=False),
            m("delays", "duplicates", "conveyor", "default", [0, 0], higher=False),
        ]
    )  # fmt: skip


def test_every_goal_met_when_the_figures_reach_their_targets() -> None:
    goals = evaluate(passing())
    assert [g.verdict for g in goals] == ["met"] * 7
    drain = goals[0]
    assert drain.figure.startswith("0.95x")
    assert "(chosen pool)" in goals[2].figure and "arq" in goals[2].figure
    assert "19,000 jobs" in goals[6].figure
    batch = next(g for g in goals if g.name == "API batch submit")
    assert batch.figure == (
        "12,000 jobs/s (2 processes, 2 clients); 7,000 jobs/s with 1 process, 1 client"
    )


def test_the_batch_goal_is_judged_on_a_process_per_core() -> None:
    results = passing()
    results.add(m("api", "batch_rate", "conveyor", "2 processes, 2 clients", [9_000, 9_500]))
    results.add(m("api", "batch_rate", "conveyor", "1 process, 1 client", [20_000, 20_000]))
    verdicts = {g.name: g.met for g in evaluate(results)}
    assert verdicts["API batch submit"] is False  # a fast single process does not make up


def test_goals_missed_are_marked_with_their_figure() -> None:
    results = passing()
    results.add(m("throughput", "drain_rate", "celery", "default", [2000, 2000]))
    results.add(m("latency", "p50_ms", "conveyor", "default", [9.0, 9.0], higher=False))
    results.add(m("io", "rate", "huey", "threads", [5000]))
    results.add(m("delays", "duplicates", "conveyor", "default", [3], higher=False))
    results.add(m("throughput", "rss_growth_mb", "conveyor", "default", [40], higher=False))
    verdicts = {g.name: g.met for g in evaluate(results)}
    assert verdicts["No-op drain"] is False  # median celery is now 2,000
    assert verdicts["Enqueue->start latency"] is False
    assert verdicts["I/O-bound (10 ms sleeps)"] is False
    assert verdicts["Long delays"] is False  # one run had duplicates
    assert verdicts["Worker memory"] is False  # worst run grew 40 % of 100 MB
    assert verdicts["API batch submit"] is True


def test_a_goal_without_figures_is_not_measured() -> None:
    goals = evaluate(Results())
    assert {g.verdict for g in goals} == {"not measured"}
    assert {g.figure for g in goals} == {"—"}


def test_best_peer_ignores_conveyor_celery_and_na_and_respects_direction() -> None:
    results = passing()
    results.add(m("io", "rate", "celery", "threads", [99_999]))
    assert best_peer(results, "io", "rate") == ("arq", "gevent / asyncio", 1300)
    assert best_peer(results, "io", "rate", "prefork") == ("rq", "prefork", 150)
    assert best_peer(results, "io", "rate", "threads") is None
    results.add(m("latency", "p50_ms", "rq", "default", [20.0], higher=False))
    results.add(m("latency", "p50_ms", "huey", "default", [5.0], higher=False))
    assert best_peer(results, "latency", "p50_ms") == ("huey", "default", 5.0)


def test_ratio_needs_both_figures_and_a_nonzero_reference() -> None:
    assert ratio(90, 100) == 0.9
    assert ratio(None, 100) is None
    assert ratio(1, 0) is None


def test_results_merge_repetitions_and_survive_json() -> None:
    results = Results([m("throughput", "drain_rate", "rq", "default", [1], notes=["a"])])
    results.add(m("throughput", "drain_rate", "rq", "default", [3], notes=["a", "b"]))
    item = results.get("throughput", "drain_rate", "rq", "default")
    assert item is not None and item.values == [1, 3] and item.notes == ["a", "b"]
    again = Results.from_json(results.to_json())
    assert again.median("throughput", "drain_rate", "rq", "default") == 2


def without_chosen() -> Results:
    return Results(item for item in passing().all() if item.variant != "chosen pool")


def test_io_goal_compares_the_chosen_pool_with_the_best_peer() -> None:
    results = without_chosen()
    results.add(m("io", "rate", "conveyor", "chosen pool", [1350]))
    goal = next(g for g in evaluate(results) if g.name.startswith("I/O"))
    assert goal.met is True
    assert goal.figure == "1,350/s (chosen pool) vs 1,300/s (arq, gevent / asyncio)"
    results.add(m("io", "rate", "huey", "threads", [1400]))
    assert next(g for g in evaluate(results) if g.name.startswith("I/O")).met is False


def test_io_goal_ignores_the_per_pool_figures() -> None:
    # conveyor's gevent figure (1,400) beats the peer, but its own pick was not measured
    results = without_chosen()
    results.add(m("io", "rate", "conveyor", "chosen pool", [], na="no job started"))
    goal = next(g for g in evaluate(results) if g.name.startswith("I/O"))
    assert goal.met is None


def test_memory_goal_reads_the_memory_workload_when_it_ran() -> None:
    results = passing()  # throughput: +5 MB of 100 MB over 19,000 jobs
    results.add(m("memory", "rss_start_mb", "conveyor", "default", [200], higher=False))
    results.add(m("memory", "rss_growth_mb", "conveyor", "default", [30], higher=False,
                  notes=["over 99,000 jobs"]))  # fmt: skip
    goal = next(g for g in evaluate(results) if g.name == "Worker memory")
    assert goal.figure == "+30.0 MB from 200 MB over 99,000 jobs"
    assert goal.met is False  # 15 % of 200 MB


def test_a_delay_run_stopped_at_its_cap_is_a_lower_bound_and_missed() -> None:
    results = Results(
        [
            m(
                "delays",
                "last_start_lag_s",
                "conveyor",
                "default",
                [1.5],
                higher=False,
                notes=["only 3,494 of 10,000 started by due + 8 s"],
            ),
            m("delays", "duplicates", "conveyor", "default", [0], higher=False),
        ]
    )
    goal = next(g for g in evaluate(results) if g.name == "Long delays")
    assert goal.met is False
    assert goal.figure.startswith("> 1.50 s (only 3,494 of 10,000 started")
