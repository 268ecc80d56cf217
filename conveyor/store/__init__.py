"""The job store: the source of truth for job state. All SQL lives here."""

from conveyor.store.base import ApiKey, JobFilter, JobPage, JobStore, StoreError
from conveyor.store.factory import open_store

__all__ = ["ApiKey", "JobFilter", "JobPage", "JobStore", "StoreError", "open_store"]
