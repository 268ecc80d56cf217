"""The backend's side: the seed's ``core.celery_client`` as a thin layer over ``conveyor.Client``.

::

    from examples.microservice.celery_client import celery_client

    task_id = celery_client.send_email(
        to_email="user@example.com", subject="Welcome!", body="Welcome to our service!"
    )
    celery_client.get_task_status(task_id)   # "QUEUED", "STARTED", "SUCCEEDED", ...
    celery_client.get_task_result(task_id)   # the result once SUCCEEDED, else None

Every ``send_*`` method submits a ``microservice.*`` job over conveyor's HTTP API
(validated there: bad arguments raise ``conveyor.client.ValidationFailed`` and
nothing is queued) and returns its id. ``celery_client`` reads ``CONVEYOR_URL``
(default ``http://127.0.0.1:8000``) and ``CONVEYOR_API_KEY`` when first used.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from conveyor import Client, JobState
from conveyor.client import JobFailed

PREFIX = "microservice."


class CeleryClient:
    def __init__(self, client: Client) -> None:
        self.client = client

    @classmethod
    def connect(cls, base_url: str, api_key: str | None = None) -> CeleryClient:
        return cls(Client(base_url, api_key))

    def close(self) -> None:
        self.client.close()

    # -- submitting ---------------------------------------------------------------
    def send_task(
        self,
        name: str,
        countdown: float | None = None,
        eta: datetime | None = None,
        **kwargs: Any,
    ) -> str:
        """Submit ``microservice.<name>`` with keyword arguments; returns the job id."""
        handle = self.client.submit(PREFIX + name, kwargs=kwargs, countdown=countdown, eta=eta)
        return handle.id

    def send_email(
        self, to_email: str, subject: str, body: str, html: str | None = None, **options: Any
    ) -> str:
        return self.send_task(
            "send_email_task", to_email=to_email, subject=subject, body=body, html=html, **options
        )

    def send_bulk_email(self, recipients: Sequence[str], subject: str, body: str) -> str:
        return self.send_task(
            "send_bulk_email_task", recipients=list(recipients), subject=subject, body=body
        )

    def send_push_notification(
        self,
        user_tokens: Sequence[str],
        title: str,
        body: str = "",
        data: dict[str, str] | None = None,
    ) -> str:
        return self.send_task(
            "send_push_notification_task",
            user_tokens=list(user_tokens),
            title=title,
            body=body,
            data=data,
        )

    def send_sms(self, phone_number: str, message: str) -> str:
        return self.send_task("send_sms_task", phone_number=phone_number, message=message)

    def notify_backend(self, event: str, payload: dict[str, Any] | None = None) -> str:
        return self.send_task("send_notification_to_backend", event=event, payload=payload)

    def process_notifications(self, notifications: Sequence[dict[str, Any]]) -> str:
        return self.send_task("process_notification_queue_task", notifications=list(notifications))

    def process_user_data(self, user_id: int, data_type: str, data: dict[str, Any]) -> str:
        return self.send_task(
            "process_user_data_task", user_id=user_id, data_type=data_type, data=data
        )

    def generate_report(self, report_type: str = "user_data", **options: Any) -> str:
        return self.send_task("generate_report_task", report_type=report_type, **options)

    def import_data(self, source: str) -> str:
        return self.send_task("batch_data_import_task", source=source)

    # -- reading ------------------------------------------------------------------
    def get_task_status(self, task_id: str) -> str:
        """The job's state: SCHEDULED, QUEUED, STARTED, RETRYING, SUCCEEDED, FAILED,
        DEAD or CANCELLED."""
        return self.client.get_job(task_id).state.value

    def get_task_result(self, task_id: str, wait: float = 0) -> Any:
        """The job's result if it SUCCEEDED (waiting up to ``wait`` seconds for it to
        finish), None while it is not finished; ``JobFailed`` if it failed, died or was
        cancelled."""
        job = self.client.get_job(task_id, wait=wait)
        if not job.state.is_final:
            return None
        if job.state is not JobState.SUCCEEDED:
            raise JobFailed(job)
        return job.result


class _LazyClient:
    """``celery_client``: built from the environment on first use."""

    def __init__(self) -> None:
        self._client: CeleryClient | None = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = CeleryClient.connect(
                os.environ.get("CONVEYOR_URL", "http://127.0.0.1:8000"),
                os.environ.get("CONVEYOR_API_KEY") or None,
            )
        return getattr(self._client, name)


celery_client: Any = _LazyClient()
