"""Airflow's share of an interval's wall time, and the cost of running a synced interval again.

With ``engine="stack"`` Airflow's own processes run (``local_airflow.AirflowStack``: API
server, scheduler, DAG processor, triggerer, LocalExecutor) against a sandbox process; the
DAG is unpaused and one interval triggered through the REST API ``/api/v2``. The same
interval is also synced in one plain process with the same code, and its work time is the
baseline. ``engine="dag-test"`` (the smoke version) runs the DAG with ``dag.test()`` instead.

Both put the whole interval in one download batch (``files_per_batch`` above its file
count), so the Airflow run and the plain process do the same work one step after another
and their difference is Airflow's own time.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from ditio_bench.bench import END, START, TENANT_WINDOW, Bench
from ditio_bench.report import Figure, Target
from ditio_bench.servers import SandboxServer, process_cpu_seconds

DAG_ID = "ditio_images"
MAX_MAP_LENGTH = 1024
FILE_BYTES = 20 * 1024
ONE_BATCH = {"files_per_batch": 100_000}
PARSE_TIMEOUT = 180.0
IDLE_TIMEOUT = 120.0
RUN_TIMEOUT = 600.0
POLL = 1.0
FINISHED = ("success", "failed")


def run(bench: Bench) -> None:
    tenant = {
        **TENANT_WINDOW,
        "seed": 13,
        "parents_per_hour": bench.sizes.airflow_parents,
        "file_bytes": FILE_BYTES,
    }
    sandbox = SandboxServer(**tenant)
    if bench.sizes.airflow_engine == "stack":
        found = _with_stack(bench, sandbox)
    else:
        found = _with_dag_test(bench, sandbox)
    _figures(bench, found)


def _interval_spec(sandbox: SandboxServer, prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        "sandbox": sandbox.info,
        "prefix": prefix,
        "start": START.isoformat(),
        "end": END.isoformat(),
        "max_map_length": MAX_MAP_LENGTH,
        "tuning": ONE_BATCH,
        **extra,
    }


def _with_stack(bench: Bench, sandbox: SandboxServer) -> dict[str, Any]:
    from local_airflow import BUCKET, AirflowStack
    from local_s3 import free_port

    class BenchStack(AirflowStack):
        """The local Airflow stack, with the benchmark's tenant as its sandbox."""

        def __init__(self, home: Path) -> None:
            extra = {"DITIO_IMAGES_RETRY_DELAY_SECONDS": "5"}
            super().__init__(home, port=free_port(), photos=None, extra_env=extra)
            self.sandbox = sandbox  # type: ignore[assignment]

    began = time.monotonic()
    with BenchStack(bench.workdir / "airflow-stack") as stack:
        started_in = time.monotonic() - began
        where = {"s3": stack.s3.endpoint_url, "bucket": BUCKET}
        work = bench.job("interval", _interval_spec(sandbox, "inprocess/", **where))
        pids = {name: process.pid for name, process in stack.processes.items()}
        scheduled = _scheduler_run(RestApi(stack.api_url), sandbox, pids)
        after = bench.job("interval", _interval_spec(sandbox, "inprocess-after/", **where))
        sandbox.reset_stats()
        again = bench.job("interval", _interval_spec(sandbox, "", **where))
        rerun_files = sandbox.counts().get("file", 0)
    return {
        "engine": "stack",
        "stack_start_s": started_in,
        **scheduled,
        "work": work,
        "work_after": after,
        "rerun": again,
        "rerun_file_requests": rerun_files,
    }


def _scheduler_run(api: RestApi, sandbox: SandboxServer, pids: dict[str, int]) -> dict[str, Any]:
    """Unpause, let the scheduled run pass, trigger the interval and wait for it."""
    api.wait_for_dag()
    api.unpause()
    api.wait_until_idle()
    sandbox.reset_stats()
    before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
    dag_run = api.trigger(START, END)
    spent = {name: process_cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    run_id = dag_run["dag_run_id"]
    return {
        "airflow_cpu_s": spent,
        "run_wall_s": _seconds(dag_run["start_date"], dag_run["end_date"]),
        "queued_to_end_s": _seconds(dag_run["queued_at"], dag_run["end_date"]),
        "state": dag_run["state"],
        "tasks": api.task_instances(run_id),
        "xcom_bytes": api.xcom_bytes(run_id, "list_images"),
        "first_file_requests": sandbox.counts().get("file", 0),
    }


def _with_dag_test(bench: Bench, sandbox: SandboxServer) -> dict[str, Any]:
    with sandbox:
        work = bench.job("interval", _interval_spec(sandbox, "bench/inprocess/"))
        sandbox.reset_stats()
        tested = bench.job("dag_test", _interval_spec(sandbox, ""))
        first_files = sandbox.counts().get("file", 0)
        after = bench.job("interval", _interval_spec(sandbox, "bench/inprocess-after/"))
        sandbox.reset_stats()
        again = bench.job("interval", _interval_spec(sandbox, ""))
        rerun_files = sandbox.counts().get("file", 0)
    for prefix in ("bench/", "images/", "_staging/", "manifests/", "runs/", "rejects/"):
        bench.clear(prefix)
    return {
        "engine": "dag-test",
        **tested,
        "work": work,
        "work_after": after,
        "first_file_requests": first_files,
        "rerun": again,
        "rerun_file_requests": rerun_files,
    }


def _seconds(first: str | None, last: str | None) -> float:
    if not first or not last:
        raise RuntimeError(f"the DAG run has no start or end time ({first!r}, {last!r})")
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()


def critical_path(tasks: list[dict[str, Any]]) -> float:
    """List, the slowest mapped download, publish: the task time a run cannot avoid."""
    durations: dict[str, float] = {}
    for task in tasks:
        name = task["task_id"]
        durations[name] = max(durations.get(name, 0.0), float(task["duration"] or 0.0))
    return sum(durations.values())


def _figures(bench: Bench, found: dict[str, Any]) -> None:
    bench.report.details["airflow"] = found
    if found["state"] != "success":
        raise RuntimeError(f"the DAG run ended {found['state']}: {found['tasks']}")
    mapped = sum(1 for task in found["tasks"] if task["task_id"] == "download_images")
    engine = "scheduler run" if found["engine"] == "stack" else "dag.test() run"
    group = (
        f"One interval through Airflow ({engine}, {found['work']['rows']:,} rows, "
        f"{mapped} mapped download task{'' if mapped == 1 else 's'})"
    )
    _overhead_figures(bench, found, group, engine)
    _rerun_figures(bench, found, group)


def _overhead_figures(bench: Bench, found: dict[str, Any], group: str, engine: str) -> None:
    # The plain process runs once before and once after Airflow's run; the mean evens out
    # the load other work puts on the machine meanwhile.
    work = (found["work"]["wall_s"] + found["work_after"]["wall_s"]) / 2
    wall = found["run_wall_s"]
    own = airflow_time(found, wall)
    plain = "same interval, one plain process (mean of 2)"
    own_name = "Airflow's own time: between tasks + starting each task"
    for figure in (
        Figure(group, "run wall time", wall, work, plain, "s"),
        Figure(group, own_name, own["seconds"], wall, "the run's wall time", "s"),
        Figure(
            group, "task time on the critical path", critical_path(found["tasks"]), work, plain, "s"
        ),
    ):
        bench.report.add(figure)
    bench.report.details["airflow_own_time"] = own
    starts = " and ".join(f"{value:.2f}" for value in own["start_s"].values())
    bench.report.notes.append(
        f"Airflow overhead ({engine}): {own['seconds']:.1f} s of the run's {wall:.1f} s "
        f"({own['seconds'] / wall:.0%}): {own['between_tasks_s']:.1f} s between tasks, and "
        f"starting the list and publish tasks took {starts} s beyond the same steps in the "
        "plain process (each download task is charged the smaller). Plain process: "
        f"{work:.1f} s (1 - work / wall = {max(0.0, 1 - work / wall):.0%}; the two plain runs "
        f"took {found['work']['wall_s']:.1f} s and {found['work_after']['wall_s']:.1f} s)."
    )
    if "airflow_cpu_s" in found:
        spent = sum(found["airflow_cpu_s"].values())
        bench.report.notes.append(
            f"Airflow's scheduler, API server, DAG processor and triggerer used {spent:.1f} s "
            f"of CPU during the {wall:.1f} s run (task processes not counted), on "
            f"{os.cpu_count()} cores."
        )


def _rerun_figures(bench: Bench, found: dict[str, Any], group: str) -> None:
    files = max(1, found["work"]["unique_files"])
    present = max(1, found["rerun"]["stats"].get("present", 0))
    bench.report.add(
        Figure(
            group,
            "re-run: file requests per file",
            found["rerun_file_requests"] / files,
            found["first_file_requests"] / files,
            "the first run of the interval",
            "",
            Target("==", 0),
        )
    )
    bench.report.add(
        Figure(
            group,
            "re-run: download S3 requests per object present",
            found["rerun"]["download_s3_calls"] / present,
            found["work"]["download_s3_calls"] / files,
            "the first run (one PUT per file)",
            "",
            Target("<", 0.1),
        )
    )


def airflow_time(found: dict[str, Any], wall: float) -> dict[str, Any]:
    """Time only Airflow spends: gaps between tasks, plus starting each task instance.

    The start cost is measured on the short tasks (list, publish), as their task-instance
    duration minus the same step in the plain process; each download task is charged the
    smaller of the two, since its own work time is too noisy to subtract.
    """
    durations = {task["task_id"]: float(task["duration"] or 0.0) for task in found["tasks"]}
    starts = {
        task: max(0.0, durations[task] - _mean_phase(found, phase))
        for task, phase in (("list_images", "list"), ("publish_manifest", "publish"))
    }
    downloads = sum(1 for task in found["tasks"] if task["task_id"] == "download_images")
    between = max(0.0, wall - critical_path(found["tasks"]))
    seconds = between + sum(starts.values()) + min(starts.values()) * downloads
    return {
        "seconds": min(wall, seconds),
        "between_tasks_s": between,
        "start_s": starts,
        "download_tasks": downloads,
    }


def _mean_phase(found: dict[str, Any], phase: str) -> float:
    return (found["work"]["phases"][phase] + found["work_after"]["phases"][phase]) / 2


class RestApi:
    """The few ``/api/v2`` calls the benchmark makes, each waiting with a time limit."""

    def __init__(self, api_url: str) -> None:
        self.base = f"{api_url}/api/v2"
        self.session = requests.Session()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def wait_for_dag(self) -> None:
        deadline = time.monotonic() + PARSE_TIMEOUT
        while time.monotonic() < deadline:
            response = self.session.get(f"{self.base}/dags/{DAG_ID}", timeout=30)
            if response.status_code == 200:
                return
            time.sleep(POLL)
        raise RuntimeError(f"the DAG {DAG_ID} was not parsed within {PARSE_TIMEOUT:.0f}s")

    def unpause(self) -> None:
        self.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})

    def runs(self) -> list[dict[str, Any]]:
        return self.call("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100})["dag_runs"]

    def wait_until_idle(self, settle: float = 8.0) -> None:
        """Let the scheduled run that unpausing creates (catchup is off) finish first."""
        deadline = time.monotonic() + IDLE_TIMEOUT
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if any(run["state"] not in FINISHED for run in self.runs()):
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            time.sleep(POLL)
        raise RuntimeError(f"runs of {DAG_ID} were still active after {IDLE_TIMEOUT:.0f}s")

    def trigger(self, start: datetime, end: datetime) -> dict[str, Any]:
        body = {
            "dag_run_id": f"bench__{start:%Y%m%dT%H}",
            "logical_date": start.isoformat(),
            "data_interval_start": start.isoformat(),
            "data_interval_end": end.isoformat(),
            "conf": ONE_BATCH,
        }
        run_id = self.call("POST", f"/dags/{DAG_ID}/dagRuns", json=body)["dag_run_id"]
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            dag_run = self.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
            if dag_run["state"] in FINISHED:
                return dag_run
            time.sleep(POLL)
        raise RuntimeError(f"the run {run_id} did not finish within {RUN_TIMEOUT:.0f}s")

    def task_instances(self, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"
        found = self.call("GET", path, params={"limit": 1000})["task_instances"]
        keys = ("task_id", "map_index", "state", "start_date", "end_date", "duration")
        return [{key: task.get(key) for key in keys} for task in found]

    def xcom_bytes(self, run_id: str, task_id: str) -> int:
        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        value = self.call("GET", path)["value"]
        return len(value) if isinstance(value, str) else len(json.dumps(value))
