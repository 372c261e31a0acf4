"""The parent side of a benchmark run: the S3 server, child jobs and S3 housekeeping."""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ditio_bench import ours
from ditio_bench.report import Report
from ditio_bench.servers import ROOT, SandboxServer, child_env, process_cpu_seconds
from ditio_bench.sizes import Sizes

log = logging.getLogger(__name__)

START = datetime(2026, 4, 12, 6, tzinfo=UTC)
END = START + timedelta(hours=1)
TENANT_WINDOW = {"start": START.isoformat(), "hours": 1}
JOB_TIMEOUT = 900


class BenchError(RuntimeError):
    """A measured job failed; the message carries the end of its error output."""


@dataclass
class Bench:
    """Shared state of one run: sizes, a scratch folder, the S3 server and the report.

    :param sizes: the scenario sizes (full or smoke).
    :param workdir: scratch folder for entry files and Airflow homes.
    :param s3_endpoint: URL of the S3 server process every job writes to.
    :param bucket: the bucket in that server.
    :param s3_pid: process id of the S3 server, to read its CPU time.
    """

    sizes: Sizes
    workdir: Path
    s3_endpoint: str
    bucket: str
    s3_pid: int | None = None
    report: Report = field(default_factory=Report)
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    def env(self) -> dict[str, str]:
        home = self.workdir / "airflow-home"
        env = child_env(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
            DITIO_IMAGES_RETRY_DELAY_SECONDS="1",
        )
        return {k: v for k, v in env.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}

    def job(self, kind: str, spec: dict[str, Any], timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
        """Run one worker job in a child process and return its JSON result."""
        spec = {"s3": self.s3_endpoint, "bucket": self.bucket, **spec}
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "ditio_bench.worker", kind],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise BenchError(f"worker job {kind!r} exited with {done.returncode}:\n{tail}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        log.info("%s job done in %.1fs", kind, time.monotonic() - began)
        return result

    def measured_job(
        self, kind: str, spec: dict[str, Any], sandbox: SandboxServer
    ) -> dict[str, Any]:
        """:meth:`job`, plus the CPU seconds the sandbox and S3 processes spent meanwhile."""
        pids = {"sandbox": sandbox.pid, "s3": self.s3_pid}
        before = {name: (pid, process_cpu_seconds(pid)) for name, pid in pids.items() if pid}
        result = self.job(kind, spec)
        for name, (pid, spent) in before.items():
            result[f"{name}_cpu_s"] = process_cpu_seconds(pid) - spent
        return result

    def prefix(self, name: str) -> str:
        """A fresh key prefix, so every run starts with nothing stored."""
        return f"bench/{next(self._numbers):03d}-{name}/"

    def clear(self, prefix: str) -> None:
        """Delete what a run stored, to keep the S3 server's memory and disk small."""
        store = ours.s3_store(self.s3_endpoint, self.bucket, ours.Tuning())
        store.delete_prefix(prefix)

    def write_entries(self, name: str, entries: list[dict[str, Any]]) -> str:
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps(entries), encoding="utf-8")
        return str(path)
