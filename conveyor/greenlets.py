"""Monkey-patch gevent/eventlet before anything else is imported, as ``celery worker`` does.

A green pool only works if the standard library (sockets, threads, ``time.sleep``)
is patched before the broker, the store and the task modules open connections.
``celery`` does it in its ``__main__``; ``conveyor worker -P gevent``,
``CONVEYOR_WORKER_POOL=gevent`` and ``conveyor worker -Q <queues>`` whose pool is
gevent in ``CONVEYOR_QUEUE_POOLS`` (see :mod:`conveyor.pools`) get the same here,
called first thing in ``conveyor/__init__.py``. Anything else (the API, tests, other
commands) is untouched.

Only the command line and the environment are read here (settings are not loaded
yet): when conveyor.toml picks another pool, ``conveyor worker`` starts itself
again with ``-P`` (see :func:`conveyor.cli.worker.worker`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence

from celery import maybe_patch_concurrency

from conveyor.pools import AUTO, DEFAULT_QUEUE_POOLS, GREEN_POOLS, Pool, pool_for

_patched: str | None = None


def _option(args: Sequence[str], short: str, long: str) -> str | None:
    """The last value of ``-X value``, ``-Xvalue``, ``--long value`` or ``--long=value``."""
    value = None
    for i, arg in enumerate(args):
        if arg in (short, long) and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(f"{long}="):
            value = arg.split("=", 1)[1]
        elif arg.startswith(short) and not arg.startswith("--") and len(arg) > len(short):
            value = arg[len(short) :]
    return value


def _queue_pools(environ: Mapping[str, str]) -> Mapping[str, Pool]:
    raw = environ.get("CONVEYOR_QUEUE_POOLS")
    if raw is None:
        return DEFAULT_QUEUE_POOLS
    try:
        value = json.loads(raw)
    except ValueError:
        return {}  # the settings report it once they are loaded
    return value if isinstance(value, dict) else {}


def green_pool(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> str | None:
    """The green pool a ``conveyor worker`` command line asks for, else None."""
    env = os.environ if environ is None else environ
    args = list(argv[1:])
    if not args or args[0] != "worker":
        return None
    pool = _option(args, "-P", "--pool") or env.get("CONVEYOR_WORKER_POOL") or AUTO
    if pool == AUTO:
        queues = _option(args, "-Q", "--queues") or env.get("CONVEYOR_QUEUES")
        if not queues:
            return None  # every configured queue: a mix of pools runs prefork
        names = [name.strip() for name in queues.split(",") if name.strip()]
        pool = pool_for(names, _queue_pools(env))
    return pool if pool in GREEN_POOLS else None


def patched() -> str | None:
    """The green pool this process was patched for (None: not patched)."""
    return _patched


def patch_if_green(argv: Sequence[str] | None = None) -> str | None:
    """Apply the monkey patches of the green pool the command line asks for (if any)."""
    global _patched  # noqa: PLW0603  (once per process, before anything else)
    pool = green_pool(sys.argv if argv is None else argv)
    if pool is not None:
        maybe_patch_concurrency(["conveyor", "-P", pool], short_opts=["-P"])
        _patched = pool
    return pool
