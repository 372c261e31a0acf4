"""The benchmark on tiny sizes: every scenario runs and reports every figure.

Timings at these sizes mean nothing, so nothing here asserts on a rate or a duration, nor on
whether a target was met; only that each figure was measured beside its baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE_TIMEOUT = 240
GROUPS = (
    "Download ",
    "Re-run of a fully synced batch",
    "One worker, one ",
    "One interval of ",
    "One interval through Airflow",
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench") / "latest.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), str(ROOT / "plugins")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ditio_bench", "--smoke", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return {"stdout": done.stdout, "returncode": done.returncode, **json.loads(output.read_text())}


def test_smoke_run_finishes_every_scenario_without_errors(smoke: dict[str, Any]) -> None:
    assert smoke["errors"] == []
    assert smoke["scenarios"] == ["throughput", "memory", "scale", "airflow"]
    assert smoke["sizes"] == "smoke"


def test_every_scenario_reports_its_figures(smoke: dict[str, Any]) -> None:
    groups = {figure["group"] for figure in smoke["figures"]}
    for prefix in GROUPS:
        assert any(group.startswith(prefix) for group in groups), prefix
    latencies = [group for group in groups if group.startswith("Download ")]
    assert len(latencies) == 2


def test_every_figure_stands_beside_a_baseline_and_its_ratio(smoke: dict[str, Any]) -> None:
    for figure in smoke["figures"]:
        assert figure["ours"] is not None, figure
        assert figure["baseline"] is not None and figure["baseline_name"], figure
        assert figure["ratio"] is not None or figure["baseline"] == 0, figure


def test_targets_are_judged_and_the_exit_code_follows_them(smoke: dict[str, Any]) -> None:
    judged = [figure for figure in smoke["figures"] if figure["target"]]
    assert len(judged) >= 10
    assert all(figure["passed"] in (True, False) for figure in judged)
    assert smoke["passed"] == all(figure["passed"] for figure in judged)
    assert smoke["returncode"] == (0 if smoke["passed"] else 1)


def test_every_tunable_is_swept_and_has_a_best_value(smoke: dict[str, Any]) -> None:
    swept = {entry["name"] for entry in smoke["tunables"]}
    assert swept == {"in_flight", "files_per_batch", "part_size_mb,part_concurrency"}
    assert len(smoke["recommended"]) == 4


def test_prints_one_table_with_every_figure(smoke: dict[str, Any]) -> None:
    table = smoke["stdout"]
    for figure in smoke["figures"]:
        assert figure["name"] in table
        assert figure["baseline_name"] in table
    assert "Tunables (this machine)" in table
