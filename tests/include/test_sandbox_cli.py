from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

INCLUDE = Path(__file__).resolve().parents[2] / "include"
TIMEOUT = 10


@pytest.fixture
def start_cli() -> Iterator:
    processes: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[subprocess.Popen, dict]:
        env = {**os.environ, "PYTHONPATH": str(INCLUDE)}
        process = subprocess.Popen(
            [sys.executable, "-m", "ditio_sandbox", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        processes.append(process)
        return process, json.loads(process.stdout.readline())

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_its_urls_serves_and_stops_cleanly(start_cli, signum: int) -> None:
    process, info = start_cli("--seed", "3", "--hours", "1")
    assert info["base_url"].startswith("http://127.0.0.1:") and info["client_id"] == "sandbox"
    form = {
        "grant_type": "client_credentials",
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "scope": "reportingapiv1",
    }
    token = requests.post(info["token_url"], data=form, timeout=TIMEOUT).json()["access_token"]
    page = requests.get(
        f"{info['base_url']}/v1/images",
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert page.status_code == 200 and page.json()["data"]
    assert page.json()["data"][0]["downloadUrl"].startswith(info["core_url"])
    process.send_signal(signum)
    assert process.wait(timeout=10) == 0


def test_cli_writes_the_url_file_and_takes_credentials(start_cli, tmp_path: Path) -> None:
    url_file = tmp_path / "sandbox.json"
    process, info = start_cli(
        "--url-file", str(url_file), "--client-id", "me", "--client-secret", "s"
    )
    assert json.loads(url_file.read_text()) == info
    assert (info["client_id"], info["client_secret"]) == ("me", "s")
    process.terminate()
    assert process.wait(timeout=10) == 0


def test_cli_refuses_a_public_host() -> None:
    env = {**os.environ, "PYTHONPATH": str(INCLUDE)}
    result = subprocess.run(
        [sys.executable, "-m", "ditio_sandbox", "--host", "0.0.0.0"],
        capture_output=True,
        env=env,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "loopback" in result.stderr
