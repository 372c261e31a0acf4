"""Run a local S3 endpoint (moto's server) as a child process on a loopback port.

Used by the demo, the tests and the local Airflow stack. MinIO plays this part in
docker-compose.yaml.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

import requests

ACCESS_KEY = "sandbox"
SECRET_KEY = "sandbox-secret"
REGION = "eu-north-1"


def stop_process(process: subprocess.Popen[Any] | None, timeout: float = 20.0) -> None:
    """SIGTERM one child process, then SIGKILL it if it has not exited after ``timeout``."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalS3:
    """A moto S3 server in its own process.

    :param host: loopback address to bind.
    :param port: port to bind; 0 picks a free one.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> LocalS3:
        command = [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the S3 server exited with code {self.process.returncode}")
            try:
                requests.get(self.endpoint_url, timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the S3 server did not answer on {self.endpoint_url}")

    def stop(self) -> None:
        stop_process(self.process, timeout=10)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def connection_json(self) -> str:
        """The ``aws_default`` connection pointing at this server, in Airflow's JSON form."""
        import json

        return json.dumps(
            {
                "conn_type": "aws",
                "login": ACCESS_KEY,
                "password": SECRET_KEY,
                "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION},
            }
        )

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a local S3 endpoint on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with LocalS3(args.host, args.port) as server:
        print(server.endpoint_url, flush=True)
        try:
            server.process.wait()  # type: ignore[union-attr]
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
