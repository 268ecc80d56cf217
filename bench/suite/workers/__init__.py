"""The task modules each queue's workers import: the same four tasks for every queue.

``noop()``, ``sleep(ms)``, ``stamp(sent_at)`` and ``delayed(index)`` report through
``bench.suite.probe``.
"""
