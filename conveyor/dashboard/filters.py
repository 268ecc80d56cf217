"""The Jobs page's filter form: query parameters ⇄ JobQuery, with friendly errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from conveyor.jobs import JobState
from conveyor.store.base import decode_cursor
from conveyor.store.dashboard import JobQuery

PAGE_SIZE = 50
FIELDS = ("state", "task", "queue", "since", "until", "q")
MAX_TEXT = 200


@dataclass(frozen=True, slots=True)
class JobFilters:
    """What the person typed (echoed back into the form) and what it means."""

    values: dict[str, str]
    query: JobQuery
    cursor: str | None
    errors: dict[str, str] = field(default_factory=dict)

    def link(self, cursor: str | None = None) -> str:
        """The query string of these filters (and ``cursor``), for links and live updates."""
        params = {k: v for k, v in self.values.items() if v}
        if cursor:
            params["cursor"] = cursor
        return urlencode(params)


def _time(value: str) -> datetime:
    """A ``datetime-local`` value (or full ISO 8601); naive times are UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _state(value: str, errors: dict[str, str]) -> tuple[JobState, ...]:
    if not value:
        return ()
    try:
        return (JobState(value.upper()),)
    except ValueError:
        errors["state"] = f"unknown state {value!r}"
        return ()


def _times(values: dict[str, str], errors: dict[str, str]) -> dict[str, datetime | None]:
    out: dict[str, datetime | None] = {"since": None, "until": None}
    for name in ("since", "until"):
        if values[name]:
            try:
                out[name] = _time(values[name])
            except ValueError:
                errors[name] = "use a date and time such as 2026-11-21T09:30"
    return out


def _cursor(value: str | None, errors: dict[str, str]) -> str | None:
    if not value:
        return None
    try:
        decode_cursor(value)
    except ValueError:
        errors["cursor"] = "that page link is not valid any more; showing the newest jobs"
        return None
    return value


def parse_filters(params: dict[str, str]) -> JobFilters:
    values = {name: params.get(name, "").strip()[:MAX_TEXT] for name in FIELDS}
    errors: dict[str, str] = {}
    times = _times(values, errors)
    query = JobQuery(
        states=_state(values["state"], errors),
        task=values["task"] or None,
        queue=values["queue"] or None,
        created_after=times["since"],
        created_before=times["until"],
        text=values["q"] or None,
    )
    return JobFilters(values, query, _cursor(params.get("cursor"), errors), errors)
