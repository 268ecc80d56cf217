"""Every task of the example, registered as ``mluvme.<name>`` (import this module).

Seed 000's task families, one module each like ``backend/tasks/*.py``:
analytics, notifications, gamification, maintenance; plus the synthetic demo.
"""

from __future__ import annotations

from examples.mluvme import analytics, demo, gamification, maintenance, notifications

__all__ = ["analytics", "demo", "gamification", "maintenance", "notifications"]
