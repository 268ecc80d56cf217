"""The benchmark suite's statistics (bench/suite/stats.py): pure, no bench extra needed."""

from __future__ import annotations

import pytest

from bench.suite.stats import percentile, rate, summarize


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)


def test_percentile_refuses_no_values_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_summary_is_the_median_with_its_spread() -> None:
    summary = summarize([10.0, 30.0, 20.0])
    assert (summary.median, summary.low, summary.high, summary.runs) == (20.0, 10.0, 30.0, 3)
    assert summary.spread_pct == pytest.approx(50.0)
    assert summarize([0.0, 0.0]).spread_pct == 0.0
    with pytest.raises(ValueError):
        summarize([])


def test_rate_of_an_empty_interval_is_zero() -> None:
    assert rate(100, 2.0) == 50.0
    assert rate(5, 0.0) == 0.0
