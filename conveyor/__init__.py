"""conveyor — a background job service for Python web applications, built on Celery."""

# ruff: noqa: E402  (the green-pool patch must run before the other imports)

from conveyor.greenlets import patch_if_green

patch_if_green()  # before anything opens a socket: `conveyor worker -P gevent`

from conveyor import local
from conveyor.client import AsyncClient, Client
from conveyor.context import JobContext, current_job, progress
from conveyor.errors import (
    ArgumentsInvalid,
    BrokerUnavailable,
    ConveyorError,
    PermanentError,
    SubmitRefused,
    TaskNotFound,
    TemporaryError,
)
from conveyor.jobs import Job, JobState
from conveyor.policies.concurrency import ConcurrencyLimit
from conveyor.policies.ratelimit import Limit
from conveyor.policies.retry import RetryPolicy
from conveyor.settings import Settings, get_settings, load_settings
from conveyor.task import TaskFunction, task

__all__ = [
    "ArgumentsInvalid",
    "AsyncClient",
    "BrokerUnavailable",
    "Client",
    "ConcurrencyLimit",
    "ConveyorError",
    "Job",
    "JobContext",
    "JobState",
    "Limit",
    "PermanentError",
    "RetryPolicy",
    "Settings",
    "SubmitRefused",
    "TaskFunction",
    "TaskNotFound",
    "TemporaryError",
    "current_job",
    "get_settings",
    "load_settings",
    "local",
    "progress",
    "task",
]
