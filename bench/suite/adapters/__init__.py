"""One driver per queue: how to start its workers and how to enqueue its jobs."""

from __future__ import annotations

from bench.suite.adapters.base import Adapter, Context
from bench.suite.adapters.registry import ADAPTERS, adapter

__all__ = ["ADAPTERS", "Adapter", "Context", "adapter"]
