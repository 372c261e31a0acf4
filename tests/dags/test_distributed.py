"""The deployed shape: Airflow's own processes, a backfill through the REST API, real workers.

Starts the API server, scheduler (LocalExecutor workers), DAG processor and triggerer as
separate processes with only ``dags_folder``/``plugins_folder`` pointing at this repo, plus the
sandbox API and an S3 server as processes, then backfills three hours as the UI would.
"""

from __future__ import annotations

import json
import time

import psutil
import pytest
import requests
from helpers import HOUR, SAMPLE_PHOTOS, START, read_jsonl
from local_airflow import BUCKET, AirflowStack
from local_s3 import free_port

pytestmark = pytest.mark.timeout(900)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


def dag_parsed(stack):
    try:
        return stack.api("GET", "/dags/ditio_images")
    except Exception:  # noqa: BLE001 - not parsed yet
        return None


def answered(stack, method, path, **kwargs):
    try:
        return stack.api(method, path, **kwargs)
    except requests.HTTPError as err:
        if err.response.status_code != 503:
            raise
        return None


def listening_addresses(stack) -> set[str]:
    pids = set()
    for process in [*stack.processes.values(), stack.sandbox.process, stack.s3.process]:
        parent = psutil.Process(process.pid)
        pids |= {parent.pid, *(child.pid for child in parent.children(recursive=True))}
    return {
        conn.laddr.ip
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-home")
    extra = {"DITIO_IMAGES_RETRY_DELAY_SECONDS": "2"}
    with AirflowStack(home, port=free_port(), photos=SAMPLE_PHOTOS, extra_env=extra) as running:
        yield running


def test_a_backfill_through_the_api_syncs_three_hours_with_real_workers(stack):
    wait_until(lambda: dag_parsed(stack), 240, "the DAG processor to parse the DAG")
    stack.api("PATCH", "/dags/ditio_images", json={"is_paused": False})
    backfill = {
        "dag_id": "ditio_images",
        "from_date": START.isoformat(),
        "to_date": (START + 2 * HOUR).isoformat(),
        "max_active_runs": 2,
    }
    # On SQLite the API answers 503 while the scheduler holds the database lock: ask again.
    wait_until(lambda: answered(stack, "POST", "/backfills", json=backfill), 60, "the backfill")

    def finished():
        stack.restart_exited()
        # Unpausing also schedules the latest hour (catchup is off); keep the backfill's runs.
        runs = stack.api("GET", "/dags/ditio_images/dagRuns")["dag_runs"]
        runs = [r for r in runs if r["run_type"] == "backfill"]
        done = [r for r in runs if r["state"] in ("success", "failed")]
        return runs if len(runs) == 3 and len(done) == 3 else None

    runs = wait_until(finished, 600, "three backfill runs to finish")
    assert {r["state"] for r in runs} == {"success"}
    assert sorted(r["data_interval_start"][:13] for r in runs) == [
        "2026-04-12T06",
        "2026-04-12T07",
        "2026-04-12T08",
    ]

    s3 = stack.s3.client()
    for hour in range(3):
        start = START + hour * HOUR
        key = f"manifests/dt={start:%Y-%m-%d}/hour={start:%H}/images.jsonl"
        manifest = read_jsonl(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        summary_key = f"runs/dt={start:%Y-%m-%d}/hour={start:%H}/summary.json"
        summary = json.loads(s3.get_object(Bucket=BUCKET, Key=summary_key)["Body"].read())
        assert len(manifest) == summary["unique_rows"] > 0
        assert all(row["object_status"] == {"original": "stored"} for row in manifest)


def test_every_listener_binds_loopback_only(stack):
    addresses = listening_addresses(stack)
    assert addresses, "found no listening sockets"
    assert all(address.startswith("127.") for address in addresses), addresses
