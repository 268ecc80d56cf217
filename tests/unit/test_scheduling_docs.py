"""Every schedule shown in docs/scheduling.md is valid, in TOML and API JSON form alike."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from conveyor.schedules import Schedule, ScheduleSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "scheduling.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_toml_schedules_are_valid() -> None:
    tables: dict[str, dict[str, object]] = {}
    for block in blocks("toml"):
        tables.update(tomllib.loads(block)["schedules"])
    specs = {name: ScheduleSpec.model_validate(table) for name, table in tables.items()}
    assert len(specs) == 13  # the 12 seed schedules and the digest example
    assert specs["cleanup-old-data"].cron == "0 2 * * mon"
    assert specs["system-health-check"].interval == 300


def test_api_json_schedules_are_valid_and_match_the_toml() -> None:
    bodies = [
        item
        for block in blocks("json")
        if block.lstrip().startswith("[")
        for item in json.loads(block)
    ]
    assert len(bodies) == 12
    tables: dict[str, dict[str, object]] = {}
    for block in blocks("toml"):
        tables.update(tomllib.loads(block)["schedules"])
    now = datetime(2024, 6, 2, 12, tzinfo=UTC)  # a Sunday
    for body in bodies:
        name = body.pop("name")
        from_json = Schedule.from_spec(name, ScheduleSpec.model_validate(body), "api", now)
        from_toml = Schedule.from_spec(name, ScheduleSpec.model_validate(tables[name]), "api", now)
        assert from_json.task == from_toml.task and from_json.queue == from_toml.queue
        if from_json.cron and from_toml.cron:  # the same times, however they are spelled
            assert from_json.next_run_at == from_toml.next_run_at, name
    weekly = Schedule.from_spec(
        "w", ScheduleSpec.model_validate(tables["cleanup-old-data"]), "api", now
    )
    assert weekly.next_run_at == datetime(2024, 6, 3, 2, tzinfo=UTC)  # Monday 02:00


def test_python_examples_compile() -> None:
    for number, block in enumerate(blocks("python")):
        compile(block, f"scheduling.md:python-{number}", "exec")
