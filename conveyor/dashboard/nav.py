"""The dashboard's navigation: ONE list. A feature's page adds its entry here when it lands."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NavEntry:
    label: str
    path: str  # relative to the dashboard's root, e.g. "/jobs"
    section: str  # the ``section`` a page passes to its template, to mark the current entry


NAV: tuple[NavEntry, ...] = (
    NavEntry("Overview", "/", "overview"),
    NavEntry("Jobs", "/jobs", "jobs"),
    NavEntry("Dead letters", "/dead-letters", "dead-letters"),
    NavEntry("Schedules", "/schedules", "schedules"),
    NavEntry("Queues & workers", "/queues", "queues"),
)
