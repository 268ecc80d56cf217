"""The microservice's tables (prefix ``microservice_``), in the job store's database.

The seed keeps no tables of its own; these hold what its data tasks produce:
processed user data (``process_user_data_task``) and imported records
(``batch_data_import_task``, through the catalog's ``data.import_csv``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from conveyor.catalog.database import engine_for


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class UserData(Base):
    """The latest processed data of one user and kind (``profile_update``, ...)."""

    __tablename__ = "microservice_user_data"
    __table_args__ = (UniqueConstraint("user_id", "data_type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    data_type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImportedRecord(Base):
    """A row imported from a CSV file by ``batch_data_import_task``."""

    __tablename__ = "microservice_imported_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    amount: Mapped[float | None] = mapped_column(Numeric(12, 2), nullable=True)


def engine() -> Engine:
    """The database of the job store (``CONVEYOR_DATABASE_URL``), one pool per process."""
    return engine_for(None)


def create_tables(bind: Engine | None = None) -> None:
    """Create the microservice's tables if they are missing (safe to run any time)."""
    Base.metadata.create_all(bind or engine())
