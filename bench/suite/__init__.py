"""The benchmark suite of issue #11: conveyor vs plain Celery vs Python job-queue peers.

Run with ``make bench`` (or ``python -m bench.suite --quick`` while developing). One
module per workload (``workloads/``), one driver per queue (``adapters/``) with the
task module its workers import (``workers/``), a runner and a report writer.
"""
