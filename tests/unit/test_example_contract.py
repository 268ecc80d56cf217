"""conveyor/example.py: finding, loading and running examples (no services needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conveyor.example import (
    EXAMPLES_DIR,
    Example,
    ExampleError,
    available_examples,
    child_environment,
    load_example,
)
from conveyor.supervisor import Child


def _example(**changes: object) -> Example:
    values: dict[str, object] = {
        "name": "demo",
        "title": "Demo",
        "imports": ("examples.demo.tasks",),
        "prepare": lambda settings: None,
        "environment": {"CONVEYOR_SMTP_PORT": "2525", "DEMO_URL": "http://stand-in"},
    }
    values.update(changes)
    return Example(**values)  # type: ignore[arg-type]


def test_the_seed_examples_are_available() -> None:
    assert {"microservice", "mentorhub"} <= set(available_examples())


@pytest.mark.parametrize("name", ["microservice", "mentorhub"])
def test_each_example_loads_with_its_prefixed_imports(name: str) -> None:
    example = load_example(name)
    assert example.name == name
    assert example.imports and all(m.startswith(f"examples.{name}.") for m in example.imports)
    assert example.title and callable(example.prepare)


def test_unknown_example_names_the_available_ones() -> None:
    with pytest.raises(ExampleError, match=r"unknown example 'nope'; available: .*microservice"):
        load_example("nope")


def test_broken_example_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "exroot"
    (root / "broken").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "broken" / "__init__.py").write_text("")
    (root / "broken" / "app.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ExampleError, match="example 'broken' failed to import: boom"):
        load_example("broken", root)


def test_child_environment_user_settings_win_and_imports_add_up() -> None:
    base = {"CONVEYOR_SMTP_PORT": "25", "CONVEYOR_IMPORTS": "myapp.tasks", "PYTHONPATH": "/x"}
    env = child_environment(_example(), base)
    assert env["CONVEYOR_SMTP_PORT"] == "25"  # the user's explicit setting wins
    assert env["DEMO_URL"] == "http://stand-in"
    assert env["CONVEYOR_IMPORTS"] == "myapp.tasks,examples.demo.tasks"
    assert env["PYTHONPATH"].split(os.pathsep) == [str(EXAMPLES_DIR.parent), "/x"]
    again = child_environment(_example(), env)
    assert again["CONVEYOR_IMPORTS"] == "myapp.tasks,examples.demo.tasks"
    assert again["PYTHONPATH"] == env["PYTHONPATH"]


def test_extra_processes_run_plain_python() -> None:
    child = Child("stand-in", ["-m", "examples.mailsink"], plain_python=True)
    assert child.command()[1:] == ["-m", "examples.mailsink"]
    assert Child("api", ["api"]).command()[1:] == ["-m", "conveyor", "api"]
