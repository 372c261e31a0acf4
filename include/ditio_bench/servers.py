"""The servers a benchmark measures against, each in its own process on 127.0.0.1.

The sandbox API and the S3 endpoint run as child processes, so the CPU time of a measured
worker process is its own and never includes serving its requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from local_s3 import stop_process

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = ROOT / "include"
PLUGINS = ROOT / "plugins"
BUCKET = "ditio-bench"
CONTROL_TIMEOUT = 30


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: our packages importable, nothing else changed."""
    path = os.pathsep.join([str(INCLUDE), str(PLUGINS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep), **extra}


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time a running process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SandboxServer:
    """One sandbox tenant served by a child process (see :mod:`ditio_bench.sandbox_main`).

    :param tenant: keyword arguments of :class:`ditio_sandbox.Tenant`, plus ``huge_sizes``.
    """

    def __init__(self, **tenant: Any) -> None:
        self.tenant = tenant
        self.info: dict[str, Any] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self._session = requests.Session()

    def start(self, timeout: float = 120.0) -> SandboxServer:
        url_file = Path(tempfile.mkdtemp(prefix="ditio-bench-")) / "sandbox.json"
        command = [
            sys.executable,
            "-m",
            "ditio_bench.sandbox_main",
            "--config",
            json.dumps(self.tenant),
            "--url-file",
            str(url_file),
        ]
        self.process = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not url_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox did not start with tenant options {self.tenant}")
            time.sleep(0.05)
        self.info = json.loads(url_file.read_text(encoding="utf-8"))
        return self

    def stop(self) -> None:
        self._session.close()
        stop_process(self.process)

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self.process.pid

    @property
    def control_url(self) -> str:
        return self.info["control_url"]

    def control(self, method: str, action: str, payload: Any = None) -> Any:
        response = self._session.request(
            method, f"{self.control_url}/{action}", json=payload, timeout=CONTROL_TIMEOUT
        )
        response.raise_for_status()
        return response.json()

    def set_file_latency(self, seconds: float) -> None:
        """Every file request waits ``seconds`` before its answer (0 removes the delay)."""
        self.control("DELETE", "faults")
        if seconds > 0:
            rule = {"endpoint": "file", "action": "latency", "seconds": seconds}
            self.control("POST", "faults", rule)

    def counts(self) -> dict[str, int]:
        """Requests per endpoint since the last :meth:`reset_stats`."""
        return self.control("GET", "stats")["counts"]

    def reset_stats(self) -> None:
        self.control("POST", "stats/reset")

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
