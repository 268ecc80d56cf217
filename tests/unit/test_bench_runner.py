"""Which repetitions of which workloads the suite runs (bench/suite/runner.py)."""

from __future__ import annotations

from bench.suite.runner import planned


def test_conveyor_and_celery_repeat_the_peers_run_their_own_count() -> None:
    assert [planned(r, "throughput", "conveyor", (3, 1)) for r in range(3)] == [True] * 3
    assert [planned(r, "throughput", "celery", (3, 1)) for r in range(3)] == [True] * 3
    assert [planned(r, "throughput", "dramatiq", (3, 1)) for r in range(3)] == [
        True,
        False,
        False,
    ]
    assert [planned(r, "latency", "huey", (3, 3)) for r in range(3)] == [True] * 3


def test_the_memory_run_happens_once_on_conveyor_and_celery_only() -> None:
    assert [planned(r, "memory", "conveyor", (3, 1)) for r in range(3)] == [True, False, False]
    assert [planned(r, "memory", "celery", (3, 1)) for r in range(3)] == [True, False, False]
    assert not planned(0, "memory", "dramatiq", (3, 1))


def test_the_api_workload_repeats_on_conveyor_only() -> None:
    assert [planned(r, "api", "conveyor", (3, 3)) for r in range(3)] == [True] * 3
    assert [planned(r, "api", "rq", (3, 3)) for r in range(3)] == [True, False, False]
