from __future__ import annotations

import asyncio
import os
import threading
from datetime import datetime

import pytest
from pydantic import BaseModel

from conveyor.errors import ArgumentsInvalid, TaskNotFound
from conveyor.task import TaskRegistry, TaskSpec, registry, run_coroutine, task


class Address(BaseModel):
    city: str


@task(name="unit.typed")
def typed(user_id: int, when: datetime, address: Address, tags: list[str] | None = None) -> str:
    return f"{user_id}:{when.year}:{address.city}:{tags}"


@task(name="unit.async_double")
async def async_double(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


def test_name_defaults_to_module_and_function() -> None:
    @task
    def plain(x: int) -> int:
        return x

    assert plain.name == f"{__name__}.plain"
    assert plain.name in registry


def test_arguments_are_validated_and_coerced() -> None:
    values = typed.spec.validate([7], {"when": "2026-01-02T03:04:05Z", "address": {"city": "Brno"}})
    assert values["user_id"] == 7
    assert isinstance(values["when"], datetime)
    assert isinstance(values["address"], Address)
    assert typed(1, "2026-01-01T00:00:00Z", {"city": "Praha"}) == "1:2026:Praha:None"


@pytest.mark.parametrize(
    ("args", "kwargs", "loc"),
    [
        ([], {"when": "2026-01-01T00:00:00Z", "address": {"city": "x"}}, ["user_id"]),
        (["abc"], {"when": "2026-01-01T00:00:00Z", "address": {"city": "x"}}, ["user_id"]),
        ([1], {"when": "yesterday", "address": {"city": "x"}}, ["when"]),
        ([1], {"when": "2026-01-01T00:00:00Z", "address": {}}, ["address", "city"]),
        ([1], {"when": "2026-01-01T00:00:00Z", "address": {"city": "x"}, "extra": 1}, ["extra"]),
        ([1, "2026-01-01", {"city": "x"}, [], 5], {}, ["args"]),
        (
            [1],
            {"user_id": 2, "when": "2026-01-01T00:00:00Z", "address": {"city": "x"}},
            ["user_id"],
        ),
    ],
)
def test_bad_arguments_give_field_level_errors(
    args: list[object], kwargs: dict[str, object], loc: list[str]
) -> None:
    with pytest.raises(ArgumentsInvalid) as raised:
        typed.spec.validate(args, kwargs)
    assert list(raised.value.errors[0]["loc"]) == loc


def test_json_schema_describes_parameters() -> None:
    schema = typed.spec.json_schema()
    assert schema["required"] == ["user_id", "when", "address"]
    assert schema["properties"]["user_id"]["type"] == "integer"
    assert schema["additionalProperties"] is False


def test_star_args_are_refused_at_declaration() -> None:
    def bad(*values: int) -> None:
        return None

    with pytest.raises(TypeError, match="cannot be validated"):
        TaskSpec(name="unit.bad", fn=bad)


def test_invalid_names_and_priorities_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid task name"):
        task(name="has space")(lambda: None)
    with pytest.raises(ValueError, match="priority"):
        task(name="unit.prio", priority=12)(lambda: None)


def test_registry_refuses_a_second_function_under_the_same_name() -> None:
    local = TaskRegistry()
    local.add(TaskSpec(name="dup", fn=lambda: 1))
    with pytest.raises(ValueError, match="already taken"):
        local.add(TaskSpec(name="dup", fn=len))
    with pytest.raises(TaskNotFound):
        local.get("missing")


def test_async_tasks_reuse_one_loop_per_thread() -> None:
    loops: list[int] = []

    async def which_loop() -> int:
        return id(asyncio.get_running_loop())

    loops.append(run_coroutine(which_loop()))
    loops.append(run_coroutine(which_loop()))
    assert loops[0] == loops[1]
    other: list[int] = []
    thread = threading.Thread(target=lambda: other.append(run_coroutine(which_loop())))
    thread.start()
    thread.join()
    assert other[0] != loops[0]
    assert async_double(4) == 8
    assert os.getpid()  # same process
