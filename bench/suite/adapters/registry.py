"""Queue name -> its driver class, imported only when that queue is benchmarked (each
driver imports its queue's package, from the bench extra)."""

from __future__ import annotations

from importlib import import_module

from bench.suite.adapters.base import Adapter, Context

ADAPTERS = {
    "conveyor": "bench.suite.adapters.conveyor:ConveyorAdapter",
    "celery": "bench.suite.adapters.celery:CeleryAdapter",
    "dramatiq": "bench.suite.adapters.dramatiq:DramatiqAdapter",
    "rq": "bench.suite.adapters.rq:RqAdapter",
    "huey": "bench.suite.adapters.huey:HueyAdapter",
    "taskiq": "bench.suite.adapters.taskiq:TaskiqAdapter",
    "arq": "bench.suite.adapters.arq:ArqAdapter",
}


def adapter(name: str, ctx: Context) -> Adapter:
    module, _, cls = ADAPTERS[name].partition(":")
    made: Adapter = getattr(import_module(module), cls)(ctx)
    return made
