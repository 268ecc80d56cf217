"""Keep the dead-letter queue bounded: trim it whenever a job dies."""

from __future__ import annotations

from datetime import timedelta

from conveyor.hooks.base import Hook, RunContext
from conveyor.jobs import JobState, utcnow
from conveyor.settings import Settings
from conveyor.store.base import Failure, JobStore


def trim_dead_letters(store: JobStore, settings: Settings) -> int:
    """Apply the retention settings (max entries, max age) to the dead-letter queue."""
    cutoff = utcnow() - timedelta(seconds=settings.dead_letter_max_age)
    return store.trim_dead_letters(settings.dead_letter_max_entries, cutoff)


class DeadLetterRetentionHook(Hook):
    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def on_failure(self, ctx: RunContext, failure: Failure, state: JobState) -> None:
        if state is JobState.DEAD:
            trim_dead_letters(self.store, self.settings)
