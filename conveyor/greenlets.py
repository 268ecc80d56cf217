"""Monkey-patch gevent/eventlet before anything else is imported, as ``celery worker`` does.

A green pool only works if the standard library (sockets, threads, ``time.sleep``)
is patched before the broker, the store and the task modules open connections.
``celery`` does it in its ``__main__``; ``conveyor worker -P gevent`` (or
``CONVEYOR_WORKER_POOL=gevent``) gets the same here, called first thing in
``conveyor/__init__.py``. Anything else (the API, tests, other commands) is untouched.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from celery import maybe_patch_concurrency

GREEN_POOLS = ("gevent", "eventlet")


def green_pool(argv: Sequence[str], environ: dict[str, str] | None = None) -> str | None:
    """The green pool a ``conveyor worker`` command line asks for, else None."""
    args = list(argv[1:])
    if not args or args[0] != "worker":
        return None
    pool = None
    for i, arg in enumerate(args):
        if arg in ("-P", "--pool") and i + 1 < len(args):
            pool = args[i + 1]
        elif arg.startswith("--pool="):
            pool = arg.split("=", 1)[1]
        elif arg.startswith("-P") and len(arg) > 2:
            pool = arg[2:]
    if pool is None:
        pool = (os.environ if environ is None else environ).get("CONVEYOR_WORKER_POOL")
    return pool if pool in GREEN_POOLS else None


def patch_if_green(argv: Sequence[str] | None = None) -> str | None:
    """Apply the monkey patches of the green pool the command line asks for (if any)."""
    pool = green_pool(sys.argv if argv is None else argv)
    if pool is not None:
        maybe_patch_concurrency(["conveyor", "-P", pool], short_opts=["-P"])
    return pool
