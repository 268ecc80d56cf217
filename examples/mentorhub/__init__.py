"""MentorHub's background tasks (seed 004) rebuilt on conveyor.

:mod:`examples.mentorhub.tasks` holds the six tasks (``mentorhub.<name>``) and their
schedules, :mod:`examples.mentorhub.models` the tables (prefix ``mentorhub_``),
:mod:`examples.mentorhub.service` what the web API calls (sign-up verification,
password reset, booking a session with its reminder one hour before).
"""
