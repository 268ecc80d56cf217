"""Data processing and reports (queue ``data_processing``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor import RetryPolicy, task
from conveyor.catalog import data, reports
from conveyor.errors import PermanentError
from examples.microservice.backend import http_post
from examples.microservice.config import schedule_of
from examples.microservice.models import ImportedRecord, UserData, engine, utcnow

RETRY = RetryPolicy(max_retries=3, base_delay=30.0, max_delay=600.0, retry_on=())


@task(name="microservice.process_user_data_task", queue="data_processing", retry=RETRY)
def process_user_data_task(
    user_id: Annotated[int, Field(ge=1)],
    data_type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")],
    data: dict[str, Any],
) -> dict[str, Any]:
    """Store the user's latest ``data`` of ``data_type`` (merged into what is there).

    Idempotent: running it twice with the same data leaves one row with that data.
    """
    with Session(engine()) as session, session.begin():
        row = session.scalars(
            select(UserData)
            .where(UserData.user_id == user_id, UserData.data_type == data_type)
            .with_for_update()
        ).first()
        if row is None:
            row = UserData(user_id=user_id, data_type=data_type, data=dict(data), version=1)
            session.add(row)
            created = True
        else:
            row.data = {**row.data, **data}
            row.version += 1
            row.processed_at = utcnow()
            created = False
        session.flush()
        return {
            "user_id": user_id,
            "data_type": data_type,
            "created": created,
            "version": row.version,
            "fields": sorted(row.data),
        }


def _user_data_table() -> dict[str, Any]:
    with Session(engine()) as session:
        counts = session.execute(
            select(UserData.data_type, func.count()).group_by(UserData.data_type)
        ).all()
    return {
        "title": "Processed user data by kind",
        "columns": ["data_type", "users"],
        "rows": [[kind, count] for kind, count in sorted(counts)],
        "chart": {"label": "data_type", "value": "users"},
    }


@task(name="microservice.generate_report_task", queue="data_processing", retry=RETRY)
def generate_report_task(
    report_type: Literal["user_data", "jobs_summary"] = "user_data",
    params: dict[str, Any] | None = None,
    format: Literal["csv", "html"] = "html",
) -> dict[str, Any]:
    """Write a report file: ``user_data`` (processed user data per kind) or
    ``jobs_summary`` (conveyor's jobs per task and state; ``params`` as in the catalog)."""
    if report_type == "user_data":
        result: dict[str, Any] = reports.generate(
            kind="table", params=_user_data_table(), format=format
        )
    else:
        result = reports.generate(kind="jobs_summary", params=params, format=format)
    return {"report_type": report_type, **result}


@task(
    name="microservice.batch_data_import_task",
    queue="data_processing",
    retry=RetryPolicy(max_retries=3, base_delay=30.0, max_delay=600.0, retry_on=()),
    time_limit=3600,
)
def batch_data_import_task(
    source: Annotated[str, Field(min_length=1, description="A CSV file path or http(s) URL.")],
    batch_size: Annotated[int, Field(ge=1, le=10000)] = 500,
) -> dict[str, Any]:
    """Import a CSV of ``email,name,amount`` into ``microservice_imported_records``.

    A row whose email is there already is reported in ``rejected`` (the email is
    unique), so running the same import twice adds nothing the second time.
    """
    if not source.strip():
        raise PermanentError("source is empty")
    result: dict[str, Any] = data.import_csv(
        source=source, table=ImportedRecord.__tablename__, batch_size=batch_size
    )
    return result


@task(
    name="microservice.update_exchange_rates_task",
    queue="data_processing",
    retry=RETRY,
    schedule=schedule_of("update_exchange_rates_task"),
)
def update_exchange_rates_task() -> str:
    """Ask the backend to refresh its exchange rates (hourly)."""
    http_post("/internal/exchange-rates/update")
    return "exchange rates update scheduled"
