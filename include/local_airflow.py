"""Run Airflow's own processes against the sandbox API and a local S3, all on 127.0.0.1.

``make airflow`` runs this: it starts the sandbox Ditio API, a local S3 endpoint, then the
Airflow API server (UI on http://127.0.0.1:8080, login disabled), scheduler, DAG processor and
triggerer, with the ``ditio_default``/``aws_default`` connections and the bucket Variable set
through the environment. Ctrl-C stops everything it started.

Log servers are switched off (``--skip-serve-logs``) and every listener binds loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from local_s3 import stop_process

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_PHOTOS = ROOT.parent / "shared" / "sample-photos"
BUCKET = "ditio-images"


def _wait_for(url: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer on {url} within {timeout:.0f}s")


class SandboxProcess:
    """The sandbox Ditio API as a child process; its URLs come from its --url-file."""

    def __init__(
        self, *, photos: Path | None, seed: int = 7, hours: int = 3, start: str = ""
    ) -> None:
        self.hours = hours
        self.start_at = start or "2026-04-12T06:00:00Z"
        self.args = ["--seed", str(seed), "--hours", str(hours), "--start", self.start_at]
        if photos and photos.is_dir():
            self.args += ["--photos", str(photos)]
        self.info: dict[str, Any] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def start(self, timeout: float = 60.0) -> SandboxProcess:
        self._folder = tempfile.TemporaryDirectory(prefix="ditio-sandbox-")
        url_file = Path(self._folder.name) / "urls.json"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
        command = [sys.executable, "-m", "ditio_sandbox", "--url-file", str(url_file), *self.args]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not url_file.exists() or not url_file.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sandbox API did not start")
            time.sleep(0.1)
        self.info = json.loads(url_file.read_text())
        return self

    def stop(self) -> None:
        stop_process(self.process)
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


class AirflowStack:
    """Airflow's processes plus the sandbox and S3 they talk to.

    :param home: AIRFLOW_HOME to use (created; wiped first when ``fresh``).
    :param port: API server port on 127.0.0.1.
    :param photos: folder of sample photos for the sandbox tenant, if any.
    """

    COMPONENTS = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", "{port}"],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
    }

    def __init__(
        self,
        home: Path,
        *,
        port: int = 8080,
        photos: Path | None = DEFAULT_PHOTOS,
        fresh: bool = True,
        sandbox_hours: int = 3,
        sandbox_start: str = "",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        from local_s3 import LocalS3

        self.home = home
        self.port = port
        self.fresh = fresh
        self.sandbox = SandboxProcess(photos=photos, hours=sandbox_hours, start=sandbox_start)
        self.s3 = LocalS3()
        self.extra_env = extra_env or {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.groups: list[int] = []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        sandbox = self.sandbox.info
        ditio = {
            "conn_type": "http",
            "host": sandbox["base_url"],
            "login": sandbox["client_id"],
            "password": sandbox["client_secret"],
            "extra": {"token_url": sandbox["token_url"]},
        }
        return {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home}/airflow.db",
            "AIRFLOW_CONN_DITIO_DEFAULT": json.dumps(ditio),
            "AIRFLOW_CONN_AWS_DEFAULT": self.s3.connection_json(),
            "AIRFLOW_VAR_DITIO_IMAGES_BUCKET": BUCKET,
            **self.extra_env,
        }

    def start(self) -> AirflowStack:
        if self.fresh and self.home.exists():
            shutil.rmtree(self.home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.sandbox.start()
        self.s3.start()
        self.s3.client().create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
        )
        env = self.environment()
        subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL
        )
        for name in self.COMPONENTS:
            self.launch(name, env)
        _wait_for(f"{self.api_url}/api/v2/monitor/health", 180, "the Airflow API server")
        return self

    @property
    def logs(self) -> Path:
        return self.home / "process-logs"

    def launch(self, name: str, env: dict[str, str] | None = None) -> None:
        """Start (or start again) one Airflow process, appending to its log file."""
        self.logs.mkdir(exist_ok=True)
        args = [a.format(port=self.port) for a in self.COMPONENTS[name]]
        with open(self.logs / f"{name}.log", "ab") as out:
            # Its own process group, so the workers it forks can be stopped with it even
            # after it died and they were left behind.
            self.processes[name] = process = subprocess.Popen(
                [str(BIN / "airflow"), *args],
                env=env or self.environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.groups.append(process.pid)

    def restart_exited(self) -> list[str]:
        """Start again every Airflow process that exited, as a process manager would (on
        SQLite the scheduler can die of a lock race); return their names."""
        exited = [name for name, process in self.processes.items() if process.poll() is not None]
        for name in exited:
            code = self.processes[name].returncode
            log_file = self.logs / f"{name}.log"
            print(
                f"{name} exited with code {code}; restarting it (log: {log_file})", file=sys.stderr
            )
            self.launch(name)
        return exited

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.api_url}/api/v2{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def stop(self) -> None:
        _signal_groups(self.groups, signal.SIGTERM)
        for process in self.processes.values():
            stop_process(process)
        time.sleep(1)
        _signal_groups(self.groups, signal.SIGKILL)
        self.sandbox.stop()
        self.s3.stop()

    def __enter__(self) -> AirflowStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_groups(groups: list[int], signum: int) -> None:
    for group in groups:
        try:
            os.killpg(group, signum)
        except (ProcessLookupError, PermissionError):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="API server port on 127.0.0.1")
    parser.add_argument("--home", type=Path, default=ROOT / ".airflow", help="AIRFLOW_HOME")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="sample photos")
    parser.add_argument(
        "--keep-home", action="store_true", help="reuse AIRFLOW_HOME instead of starting fresh"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    stack = AirflowStack(args.home, port=args.port, photos=args.photos, fresh=not args.keep_home)
    with stack:
        sandbox = stack.sandbox
        print(f"Airflow UI:   {stack.api_url}  (login disabled for local use)")
        print(
            f"Sandbox API:  {sandbox.info['base_url']}  ({sandbox.hours} hours of data from "
            f"{sandbox.start_at})"
        )
        print(f"S3 endpoint:  {stack.s3.endpoint_url}  bucket {BUCKET} (in memory)")
        print(f"Logs:         {stack.logs}")
        print("Unpause ditio_images, then trigger it or backfill the sandbox hours. Ctrl-C stops.")
        try:
            supervise(stack)
        except KeyboardInterrupt:
            print("Stopping...")


def supervise(stack: AirflowStack) -> None:
    """Restart any Airflow process that exits until interrupted."""
    while True:
        time.sleep(1)
        stack.restart_exited()


if __name__ == "__main__":
    main()
