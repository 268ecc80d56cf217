"""Examples: small applications built on conveyor that ``conveyor up --example NAME`` runs.

Each example is a package ``examples/<name>/`` at the root of a source checkout
(the seed systems rebuilt on conveyor). Its ``app.py`` exposes ``EXAMPLE``, an
:class:`Example` saying which modules register its tasks and schedules (all named
``<name>.<task>``) and how to prepare its database with synthetic data.

The example's own tables live in the same database as the job store
(``CONVEYOR_DATABASE_URL``), under table names prefixed with the example's name.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.settings import Settings

#: where a source checkout keeps its examples (``<repo>/examples``)
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"


class ExampleError(Exception):
    """An example that does not exist or cannot be loaded (one line, for the CLI)."""


@dataclass(frozen=True, slots=True)
class Example:
    #: ``mluvme``; its tasks and schedules are ``mluvme.<name>``
    name: str
    #: one line shown by ``conveyor up --example`` listings
    title: str
    #: modules to import in every process (``CONVEYOR_IMPORTS``): they register tasks + schedules
    imports: tuple[str, ...]
    #: create the example's tables and fill them with synthetic data (clearly marked as such);
    #: called once by ``conveyor up --example NAME`` before the processes start; idempotent
    prepare: Callable[[Settings], None]
    #: extra ``CONVEYOR_*`` settings for the processes (e.g. the example's queues)
    environment: Mapping[str, str] = field(default_factory=dict)
    #: extra processes ``conveyor up --example`` runs beside API, worker and scheduler:
    #: name → arguments of the Python interpreter (e.g. a local stand-in for a backend,
    #: ``("-m", "examples.microservice.standin")``); they get the same environment
    processes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: lines printed by ``conveyor up --example`` after start (what to look at, how to try it);
    #: ``{api}`` in a line becomes the API's base URL
    notes: tuple[str, ...] = ()


def child_environment(
    example: Example, base: Mapping[str, str], root: Path = EXAMPLES_DIR
) -> dict[str, str]:
    """The environment of ``conveyor up --example``'s processes.

    ``base`` (the user's environment) wins over the example's ``environment``, except
    ``CONVEYOR_IMPORTS``, which gets the example's modules added; the checkout root goes
    on ``PYTHONPATH`` so ``examples.<name>`` imports from any working directory.
    """
    env = {**example.environment, **base}
    imports = [m.strip() for m in base.get("CONVEYOR_IMPORTS", "").split(",") if m.strip()]
    env["CONVEYOR_IMPORTS"] = ",".join(dict.fromkeys([*imports, *example.imports]))
    paths = [str(root.parent), *filter(None, base.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def available_examples(root: Path = EXAMPLES_DIR) -> list[str]:
    """Names of the examples in ``root`` (packages with an ``app.py``), sorted."""
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/app.py") if not p.parent.name.startswith("_"))


def load_example(name: str, root: Path = EXAMPLES_DIR) -> Example:
    """Import ``examples.<name>.app`` from ``root``'s parent and return its ``EXAMPLE``."""
    names = available_examples(root)
    if name not in names:
        known = ", ".join(names) or "none (this is not a source checkout)"
        raise ExampleError(f"unknown example {name!r}; available: {known}")
    parent = str(root.parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    try:
        module = importlib.import_module(f"{root.name}.{name}.app")
    except Exception as exc:  # report the example's own import error in one line
        raise ExampleError(f"example {name!r} failed to import: {exc}") from exc
    example = getattr(module, "EXAMPLE", None)
    if not isinstance(example, Example):
        raise ExampleError(f"example {name!r}: {root.name}.{name}.app defines no EXAMPLE")
    return example
