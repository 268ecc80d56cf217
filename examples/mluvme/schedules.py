"""Seed 000's "Scheduled Tasks" (Celery Beat) table, as conveyor code schedules.

| Task | Schedule |
|---|---|
| ``check_and_reset_streaks`` | Daily 00:05 UTC |
| ``send_daily_reminders`` | Daily 18:00 UTC |
| ``aggregate_platform_metrics`` | Every 30 min |
| ``cleanup_old_data`` | Monday 02:00 UTC |
| ``refresh_materialized_views`` | Hourly |

Each task passes ``schedule=SCHEDULES[<its name>]`` to ``@task``, so the scheduler
syncs a schedule named after the task (``mluvme.check_and_reset_streaks``, ...).

The seed's prose (and issue 10) gives three more cadences that its beat table
leaves out: the 00:05 statistics fan-out, weekly reports on Mondays and a weekly
``optimize_database``. They are in ``CADENCES``, kept apart so ``BEAT`` stays the
seed's table row by row.
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

#: the cadences the seed describes outside its beat table (issue 10)
CADENCES: dict[str, Cron] = {
    "mluvme.calculate_all_users_daily_stats": Cron("5 0 * * *", timezone="UTC"),
    "mluvme.send_weekly_reports": Cron("0 9 * * 1", timezone="UTC"),
    "mluvme.optimize_database": Cron("0 3 * * 0", timezone="UTC"),
}

#: every code schedule of the example
SCHEDULES: dict[str, Cron] = {**BEAT, **CADENCES}
