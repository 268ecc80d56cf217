"""A user submits catalog tasks with `conveyor submit` to a worker on the embedded default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.stack import Stack, running

pytestmark = pytest.mark.acceptance


def test_conveyor_submit_runs_a_catalog_task(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    stack = Stack(tmp_path / "var", {"CONVEYOR_REPORTS_DIR": str(reports)})
    stack.data_dir.mkdir()
    with running(stack):
        kwargs = {
            "kind": "table",
            "params": {"title": "CLI", "columns": ["a", "b"], "rows": [[1, 2], [3, 4]]},
            "format": "csv",
        }
        done = stack.conveyor(
            "submit",
            "reports.generate",
            "--kwargs",
            json.dumps(kwargs),
            "--wait",
            "--timeout",
            "60",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        job = json.loads(done.stdout)
        assert job["state"] == "SUCCEEDED"
        path = Path(job["result"]["path"])
        assert path.parent == reports.resolve()
        assert path.read_text().splitlines() == ["a,b", "1,2", "3,4"]

        refused = stack.conveyor(
            "submit",
            "maintenance.purge_rows",
            "--kwargs",
            json.dumps({"table": "jobs", "timestamp_column": "created_at", "older_than": "soon"}),
        )
        assert refused.returncode != 0
        assert "older_than" in refused.stderr
