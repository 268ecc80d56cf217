"""``data.import_csv``: stream a CSV file or URL into a table, in transactional batches.

The table is reflected from the target database (``database_url`` or the job
store's), so only real columns are written. Each value is converted to its
column's type; a row that does not convert (or that the database rejects, e.g. a
duplicate key) is reported as ``{"line", "reason"}`` and the other rows of its
batch still go in. Progress (rows read) is reported after every batch.

A source that cannot be read is retried; once a batch has been committed a
failure is permanent instead, so a retry never imports the same rows twice.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import httpx
from pydantic import Field
from sqlalchemy import Column, Engine, Table, insert
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, StatementError

from conveyor.catalog.common import tls_context
from conveyor.catalog.database import db_errors, engine_for, existing_table
from conveyor.context import progress
from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task

MAX_REPORTED_ERRORS = 100
TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


# -- reading ---------------------------------------------------------------------------
def _lines_of(chunks: Iterator[str]) -> Iterator[str]:
    """Lines with their line endings kept (csv needs them for quoted newlines)."""
    pending = ""
    for chunk in chunks:
        pending += chunk
        lines = pending.splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        yield from lines
    if pending:
        yield pending


@contextmanager
def open_source(source: str, encoding: str) -> Iterator[Iterator[str]]:
    """The lines of a local file or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        try:
            with (
                httpx.Client(timeout=60, verify=tls_context()) as client,
                client.stream("GET", source) as response,
            ):
                if response.status_code != 200:
                    kind = TemporaryError if response.status_code >= 500 else PermanentError
                    raise kind(f"GET {source} answered {response.status_code}")
                response.encoding = encoding
                yield _lines_of(response.iter_text())
        except httpx.TransportError as exc:
            raise TemporaryError(f"cannot read {source}: {exc}") from exc
        return
    path = Path(source)
    if not path.is_file():
        raise PermanentError(f"no such file: {source}")
    with path.open(encoding=encoding, newline="") as fh:
        yield fh


# -- converting ------------------------------------------------------------------------
def _python_type(column: Column[Any]) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def _convert_text(text: str, kind: type | None) -> Any:
    if kind is bool:
        lowered = text.strip().lower()
        if lowered not in TRUE | FALSE:
            raise ValueError(f"not a boolean: {text!r}")
        return lowered in TRUE
    if kind is datetime:
        return datetime.fromisoformat(text.strip())
    if kind is date:
        return date.fromisoformat(text.strip())
    if kind in (int, float, Decimal):
        return kind(text.strip())
    return text


def convert(column: Column[Any], text: str) -> Any:
    """``text`` as the column's Python type; ValueError with a reason if it does not fit."""
    if text == "":
        if column.nullable or column.default is not None or column.server_default is not None:
            return None
        raise ValueError(f"{column.name}: value required")
    try:
        value = _convert_text(text, _python_type(column))
    except (ValueError, ArithmeticError, InvalidOperation) as exc:
        raise ValueError(f"{column.name}: {exc}") from None
    length = getattr(column.type, "length", None)
    if isinstance(value, str) and length is not None and len(value) > length:
        raise ValueError(f"{column.name}: longer than {length} characters")
    return value


# -- the import ------------------------------------------------------------------------
@dataclass
class Outcome:
    inserted: int = 0
    rejected: int = 0
    rows_read: int = 0
    batches: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "reason": reason})


def _columns(table: Table, header: list[str], mapping: dict[str, str] | None) -> dict[str, str]:
    """CSV header → table column, each checked against the reflected table."""
    chosen = mapping if mapping is not None else {name: name for name in header}
    missing_in_csv = sorted(set(chosen) - set(header))
    if missing_in_csv:
        raise PermanentError(f"CSV has no column(s) {missing_in_csv}")
    unknown = sorted(c for c in chosen.values() if c not in table.columns)
    if unknown:
        raise PermanentError(f"table {table.name!r} has no column(s) {unknown}")
    return chosen


def _row(
    table: Table, header: list[str], values: list[str], columns: dict[str, str]
) -> dict[str, Any]:
    if len(values) != len(header):
        raise ValueError(f"expected {len(header)} fields, got {len(values)}")
    by_name = dict(zip(header, values, strict=True))
    row = {}
    for csv_name, column_name in columns.items():
        value = convert(table.columns[column_name], by_name[csv_name])
        if value is not None or table.columns[column_name].nullable:
            row[column_name] = value
    return row


def _insert_one(engine: Engine, table: Table, row: dict[str, Any]) -> str | None:
    try:
        with engine.begin() as conn:
            conn.execute(insert(table), [row])
    except (OperationalError, InterfaceError):
        raise  # the database is gone, not this row: db_errors() makes it temporary
    except (IntegrityError, StatementError) as exc:
        return " ".join(str(getattr(exc, "orig", exc)).split())[:300]
    return None


def write_batch(
    engine: Engine, table: Table, batch: list[tuple[int, dict[str, Any]]], outcome: Outcome
) -> None:
    """Insert the batch in one transaction; if the database refuses it, row by row."""
    try:
        with db_errors(), engine.begin() as conn:
            conn.execute(insert(table), [row for _, row in batch])
        outcome.inserted += len(batch)
    except PermanentError:
        for line, row in batch:
            with db_errors():
                reason = _insert_one(engine, table, row)
            if reason is None:
                outcome.inserted += 1
            else:
                outcome.reject(line, reason)
    outcome.batches += 1
    progress(outcome.rows_read, None, f"{outcome.inserted} rows imported")


def _run(
    engine: Engine,
    table: Table,
    reader: Any,
    columns: dict[str, str],
    header: list[str],
    batch_size: int,
    outcome: Outcome,
) -> None:
    batch: list[tuple[int, dict[str, Any]]] = []
    for values in reader:
        outcome.rows_read += 1
        try:
            batch.append((reader.line_num, _row(table, header, values, columns)))
        except ValueError as exc:
            outcome.reject(reader.line_num, str(exc))
        if len(batch) >= batch_size:
            write_batch(engine, table, batch, outcome)
            batch = []
    if batch:
        write_batch(engine, table, batch, outcome)


@task(
    name="data.import_csv",
    queue="data_processing",
    retry=RetryPolicy(max_retries=3, base_delay=30.0, max_delay=600.0, retry_on=()),
    time_limit=3600,
    soft_time_limit=3540,
)
def import_csv(
    source: Annotated[str, Field(min_length=1, description="A file path or an http(s) URL.")],
    table: Annotated[str, Field(description="Target table ([schema.]name); must exist.")],
    mapping: Annotated[
        dict[str, str] | None,
        Field(description="CSV header -> column (default: each header to its namesake)."),
    ] = None,
    batch_size: Annotated[int, Field(ge=1, le=50_000, description="Rows per transaction.")] = 500,
    database_url: Annotated[
        str | None,
        Field(
            description="SQLAlchemy URL of the target database (default: CONVEYOR_DATABASE_URL)."
        ),
    ] = None,
    delimiter: Annotated[
        str, Field(min_length=1, max_length=1, description="Field separator.")
    ] = ",",
    encoding: Annotated[str, Field(description="Text encoding of the CSV.")] = "utf-8",
) -> dict[str, Any]:
    """Import the CSV ``source`` (first line = header) into ``table``; ``mapping`` maps CSV
    headers to columns (default: same names, every header). Bad rows are reported."""
    engine = engine_for(database_url)
    reflected = existing_table(engine, table)
    outcome = Outcome()
    try:
        with open_source(source, encoding) as lines:
            reader = csv.reader(lines, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise PermanentError(f"{source} is empty")
            columns = _columns(reflected, header, mapping)
            _run(engine, reflected, reader, columns, header, batch_size, outcome)
    except (TemporaryError, UnicodeDecodeError, csv.Error) as exc:
        if isinstance(exc, TemporaryError) and outcome.inserted == 0:
            raise
        raise PermanentError(f"import stopped: {exc}") from exc
    return {
        "table": table,
        "inserted": outcome.inserted,
        "rejected": outcome.rejected,
        "rows": outcome.rows_read,
        "batches": outcome.batches,
        "errors": outcome.errors,
    }
