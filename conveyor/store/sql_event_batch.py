"""A batch of job events applied on PostgreSQL in a number of statements that does not grow
with the batch.

The batch is cut into *waves*: wave k holds the k-th event of every job in the batch, so the
events of one job still apply in record order (wave after wave), while the events of
different jobs apply together. Within a wave the events are grouped by *shape* (target
state, the columns they write, whether they carry an attempt; or a progress report), and each
group is ONE statement: the events come as arrays (``unnest``), the ``UPDATE jobs ... FROM``
applies each only where :func:`conveyor.jobs.apply_event` would accept it (same source states
and attempt check as ``sql._event_statement``) and returns the applied jobs' ids, task and
queue (the whole row for DEAD: its dead letter is made from it), and the same statement
upserts the attempt rows of all its events (applied or not, as ``_on_event`` does per event).

A worker's batch of N jobs x (STARTED, SUCCEEDED) is thus two statements, plus the history
insert, whatever N is.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Connection, Dialect, Integer, TextualSelect, text
from sqlalchemy.types import TypeEngine

from conveyor.jobs import FINAL_STATES, Job, JobEvent, JobState, sources_of
from conveyor.store.reliability import attempt_changes, dead_letter_of
from conveyor.store.schema import UtcDateTime, job_attempts, jobs
from conveyor.store.sql_reliability import insert_dead_letters


@dataclass(frozen=True)
class Applied:
    """An event the store took, with its job's task and queue (for the history row)."""

    event: JobEvent
    task: str
    queue: str


#: (progress?, target state, job columns written, attempt checked, attempt columns written)
Shape = tuple[bool, JobState, tuple[str, ...], bool, tuple[str, ...]]


def apply_event_batch(conn: Connection, events: Sequence[JobEvent]) -> list[Applied]:
    """Apply ``events`` (in record order per job); the applied ones, in record order."""
    taken: dict[int, Applied] = {}
    for wave in _waves(events):
        groups: dict[Shape, list[tuple[int, JobEvent]]] = {}
        for index, job_event in wave:
            groups.setdefault(_shape(job_event), []).append((index, job_event))
        for shape, members in groups.items():
            taken.update(_apply_group(conn, shape, members))
    return [taken[index] for index in sorted(taken)]


def _waves(events: Sequence[JobEvent]) -> list[list[tuple[int, JobEvent]]]:
    """Wave k: the k-th event of every job (with its index in the batch)."""
    seen: dict[str, int] = {}
    waves: list[list[tuple[int, JobEvent]]] = []
    for index, job_event in enumerate(events):
        k = seen.get(job_event.job_id, 0)
        seen[job_event.job_id] = k + 1
        if k == len(waves):
            waves.append([])
        waves[k].append((index, job_event))
    return waves


def _shape(job_event: JobEvent) -> Shape:
    changes = attempt_changes(job_event)
    attempt_columns = tuple(changes) if changes is not None else ()
    if job_event.progress is not None:
        return True, job_event.state, ("progress",), False, attempt_columns
    columns = tuple(job_event.changes())
    return False, job_event.state, columns, bool(job_event.attempt), attempt_columns


def _apply_group(
    conn: Connection, shape: Shape, members: list[tuple[int, JobEvent]]
) -> dict[int, Applied]:
    progress, state, columns, _, attempt_columns = shape
    params: dict[str, Any] = {
        "b_id": [e.job_id for _, e in members],
        "b_at": [array_element(UTC_TIMESTAMP, e.at, conn.dialect) for _, e in members],
        "b_attempt": [e.attempt for _, e in members],
    }
    changes = [
        {"progress": dict(e.progress or {})} if progress else e.changes() for _, e in members
    ]
    for name in columns:
        column_type = jobs.c[name].type
        params[f"j_{name}"] = [
            array_element(column_type, change[name], conn.dialect) for change in changes
        ]
    attempt_rows = [attempt_changes(e) or {} for _, e in members]
    for name in attempt_columns:
        column_type = job_attempts.c[name].type
        params[f"a_{name}"] = [
            array_element(column_type, row[name], conn.dialect) for row in attempt_rows
        ]
    single = len(members) == 1
    if single:  # one row of scalars: a plan that PostgreSQL can cache (see _group_statement)
        params = {name: values[0] for name, values in params.items()}
    rows = conn.execute(_group_statement(shape, single), params).mappings().all()
    by_job = {index: e for index, e in members}
    index_of = {e.job_id: index for index, e in members}
    out: dict[int, Applied] = {}
    dead = []
    for row in rows:
        index = index_of[row["id"]]
        job_event = by_job[index]
        out[index] = Applied(job_event, row["task"], row["queue"])
        if state is JobState.DEAD and not progress:
            dead.append(dead_letter_of(Job.from_row(dict(row)), job_event))
    if dead:
        insert_dead_letters(conn, dead)
    return out


def array_element(column_type: TypeEngine[Any], value: Any, dialect: Dialect) -> Any:
    """``value`` as an array element: what the column's own type would have sent
    (JSON as its text, ``json.dumps`` as SQLAlchemy's and psycopg's JSON adapters do;
    a timestamp as aware UTC)."""
    if isinstance(column_type, JSON):
        if value is None and column_type.none_as_null:
            return None
        return json.dumps(value)
    if isinstance(column_type, UtcDateTime):
        return column_type.process_bind_param(value, dialect)
    return value


UTC_TIMESTAMP = UtcDateTime()


def _array_type(column_type: TypeEngine[Any]) -> str:
    if isinstance(column_type, JSON):
        return "text[]"  # sent as JSON text, cast to json in SET
    if isinstance(column_type, UtcDateTime):
        return "timestamptz[]"
    if isinstance(column_type, Integer):
        return "integer[]"
    return "text[]"


def _value(name: str, column_type: TypeEngine[Any], prefix: str) -> str:
    source = f"v.{prefix}_{name}"
    return f"CAST({source} AS json)" if isinstance(column_type, JSON) else source


def _state_in(states: Sequence[str], negate: bool = False) -> str:
    """``jobs.state [NOT] IN (...)``; the states are JobState values, never user input.

    Written on ``state || ''`` so that no index on ``state`` can serve it: the only way to
    the rows is then the primary key (one index lookup per event). Otherwise a prepared
    statement's generic plan (which assumes 10 events) may scan every job in the source
    states (e.g. a whole backlog of QUEUED jobs) and hash-join the events against them.
    """
    if not states:
        return "TRUE" if negate else "FALSE"
    listed = ", ".join(f"'{value}'" for value in states)
    return f"(jobs.state || '') {'NOT IN' if negate else 'IN'} ({listed})"


@functools.cache
def _group_statement(shape: Shape, single: bool) -> TextualSelect:
    """The group's statement: its events as arrays (``unnest``), or for ONE event as one
    row of scalars. A lone event is the common small batch, and PostgreSQL plans the
    array form anew on each execution (it sees the array's length when planning with the
    values, so the cached generic plan, made for 10 rows, always looks dearer), while the
    scalar form gets its generic plan cached like any single-row statement."""
    progress, state, columns, check_attempt, attempt_columns = shape
    arrays = [("b_id", "text[]"), ("b_at", "timestamptz[]"), ("b_attempt", "integer[]")]
    arrays += [(f"j_{name}", _array_type(jobs.c[name].type)) for name in columns]
    arrays += [(f"a_{name}", _array_type(job_attempts.c[name].type)) for name in attempt_columns]
    if single:
        row = ", ".join(f"CAST(:{name} AS {kind[:-2]}) AS {name}" for name, kind in arrays)
        source = f"SELECT {row}"
    else:
        unnest = ", ".join(f"CAST(:{name} AS {kind})" for name, kind in arrays)
        names = ", ".join(name for name, _ in arrays)
        source = f"SELECT * FROM unnest({unnest}) AS v({names})"

    sets = [f"{name} = {_value(name, jobs.c[name].type, 'j')}" for name in columns]
    if progress:
        finals = sorted(s.value for s in FINAL_STATES)
        where = [_state_in(finals, negate=True)]
    else:
        sets.insert(0, f"state = '{state.value}'")
        where = [_state_in(sorted(s.value for s in sources_of(state)))]
        if check_attempt:
            where.append("jobs.attempts <= v.b_attempt")
    sets.append("updated_at = v.b_at")
    returned = (
        "jobs.*" if state is JobState.DEAD and not progress else "jobs.id, jobs.task, jobs.queue"
    )
    sql = (
        f"WITH v AS ({source}), "
        f"changed AS (UPDATE jobs SET {', '.join(sets)} FROM v "
        f"WHERE jobs.id = v.b_id AND {' AND '.join(where)} RETURNING {returned})"
    )
    if attempt_columns:
        sql += ", " + _attempt_upsert(state, attempt_columns)
    statement = text(sql + " SELECT * FROM changed")
    if returned == "jobs.*":
        return statement.columns(*jobs.c)
    return statement.columns(jobs.c.id, jobs.c.task, jobs.c.queue)


def _attempt_upsert(state: JobState, attempt_columns: tuple[str, ...]) -> str:
    """The attempt rows of the group's events: a start keeps the first start of a
    redelivered attempt (insert only); an end updates the row or creates it."""
    targets = ", ".join(("job_id", "attempt", *attempt_columns))
    values = ", ".join(("v.b_id", "v.b_attempt", *(f"v.a_{name}" for name in attempt_columns)))
    upsert = f"INSERT INTO job_attempts ({targets}) SELECT {values} FROM v"
    upsert += " ON CONFLICT (job_id, attempt) DO "
    if state is JobState.STARTED:
        upsert += "NOTHING"
    else:
        upsert += "UPDATE SET " + ", ".join(f"{n} = EXCLUDED.{n}" for n in attempt_columns)
    return f"attempts AS ({upsert})"
