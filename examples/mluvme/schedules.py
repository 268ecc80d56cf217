"""Seed 000's "Scheduled Tasks" (Celery Beat) table, as conveyor code schedules.

| Task | Schedule |
|---|---|
| ``check_and_reset_streaks`` | Daily 00:05 UTC |
| ``send_daily_reminders`` | Daily 18:00 UTC |
| ``aggregate_platform_metrics`` | Every 30 min |
| ``cleanup_old_data`` | Monday 02:00 UTC |
| ``refresh_materialized_views`` | Hourly |

Each task passes ``schedule=BEAT[<its name>]`` to ``@task``, so the scheduler
syncs a schedule named after the task (``mluvme.check_and_reset_streaks``, ...).
The other cadences the seed's prose mentions (weekly reports on Mondays, the
00:05 statistics fan-out, a weekly ``optimize_database``) are not in its beat
table, so they are not scheduled here either; README.md shows how to add them.
"""

from __future__ import annotations

from conveyor.schedules import Cron

BEAT: dict[str, Cron] = {
    "mluvme.check_and_reset_streaks": Cron("5 0 * * *", timezone="UTC"),
    "mluvme.send_daily_reminders": Cron("0 18 * * *", timezone="UTC"),
    "mluvme.aggregate_platform_metrics": Cron("*/30 * * * *", timezone="UTC"),
    "mluvme.cleanup_old_data": Cron("0 2 * * 1", timezone="UTC"),
    "mluvme.refresh_materialized_views": Cron("0 * * * *", timezone="UTC"),
}
