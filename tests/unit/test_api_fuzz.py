"""Fuzz the HTTP API from its own OpenAPI schema (schemathesis, bounded examples):
no request may produce a 5xx, and every response must match the documented schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from structlog.testing import capture_logs

from conveyor.api import create_api
from conveyor.engine import create_app, import_task_modules
from conveyor.keys import create_key
from conveyor.settings import load_settings
from conveyor.store.memory import MemoryStore
from conveyor.submit import Submitter

#: examples per operation: enough to cover the schemas, small enough for ~30 s in total
MAX_EXAMPLES = 40
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


def _fuzzed_app() -> tuple[Any, str]:
    """The API on in-memory backends (nothing touches the disk) and an admin key."""
    settings_ = load_settings(
        data_dir=Path("var-fuzz-unused"),
        broker_url="memory://",
        database_url="memory://",
        result_backend="cache+memory://",
        imports=["tests.support.tasks"],
    )
    import_task_modules(settings_)
    store = MemoryStore()
    app = create_api(settings_, store, Submitter(settings_, store, create_app(settings_)))
    key, _ = create_key(store, "fuzz", ["admin"])
    return app, key


#: how many sub-steps the fuzzer may put in one chain/group/chord: the spec allows 1000 and
#: is recursive, so unbounded generation can build nested lists of millions of steps (a run
#: was killed for using 22 GB); a few per level already reach every validation branch
FUZZ_STEPS = 3


def _bounded_workflow_lists(app: Any) -> None:
    """Shrink ``maxItems`` of the step lists in the app's cached OpenAPI document."""
    for name, component in app.openapi()["components"]["schemas"].items():
        for field in ("chain", "group", "chord"):
            prop = component.get("properties", {}).get(field)
            if name.endswith("Step") and prop and "maxItems" in prop:
                prop["maxItems"] = FUZZ_STEPS


APP, KEY = _fuzzed_app()
_bounded_workflow_lists(APP)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
#: workflow specs are recursive: the coverage phase would enumerate them for minutes,
#: so that operation runs the examples and fuzzing phases only
WORKFLOWS = {"path": "/api/v1/workflows", "method": "POST"}
WORKFLOW_EXAMPLES = 40
without_coverage = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
workflow_schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=without_coverage)


def _call(case: Any) -> None:
    with capture_logs() as logs:  # also spares rendering tracebacks of refused requests
        case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS)
    assert [e for e in logs if e["event"] == "request_failed"] == []


#: the event stream never ends by design (tested with a real client in
#: tests/integration/test_observability.py); the long-poll is bounded by ``wait`` <= 60 s
#: per request, too slow to fuzz
UNBOUNDED = r"^/api/v1/events$"


@schema.exclude(**WORKFLOWS).exclude(path_regex=UNBOUNDED).parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_never_fails_and_matches_its_schema(case: Any) -> None:
    _call(case)


@workflow_schema.include(**WORKFLOWS).parametrize()
@settings(
    max_examples=WORKFLOW_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_workflow_submit_never_fails_and_matches_its_schema(case: Any) -> None:
    _call(case)
