"""Sync three hours of a sandbox Ditio tenant into a local S3 with the real DAG, and report.

``make demo`` runs this. It starts the sandbox API (its command, ``python -m ditio_sandbox``)
and a local S3 server on 127.0.0.1 as child processes, runs the ``ditio_images`` DAG with
``dag.test()`` for three consecutive hourly intervals (with a few faults injected through the
sandbox's control API, which the retry policy absorbs), prints one summary line per interval,
copies the bucket to ``.demo/bucket/`` for inspection, and stops everything it started.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
PHOTOS = ROOT.parent / "shared" / "sample-photos"
START = datetime(2026, 4, 12, 6, tzinfo=UTC)
HOURS = 3
BUCKET = "ditio-images-demo"
PREFIX = "ditio/"


def prepare_airflow_home() -> None:
    """A fresh Airflow home under .demo/, configured before Airflow is first imported."""
    shutil.rmtree(DEMO, ignore_errors=True)
    (DEMO / "airflow").mkdir(parents=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(DEMO / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{DEMO}/airflow/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "DITIO_IMAGES_RETRY_DELAY_SECONDS": "2",
        }
    )


def configure_connections(sandbox: dict, s3) -> None:
    ditio = {
        "conn_type": "http",
        "host": sandbox["base_url"],
        "login": sandbox["client_id"],
        "password": sandbox["client_secret"],
        "extra": {"token_url": sandbox["token_url"], "backoff_base": 0.2, "jitter": 0.5},
    }
    os.environ["AIRFLOW_CONN_DITIO_DEFAULT"] = json.dumps(ditio)
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = s3.connection_json()
    os.environ["AIRFLOW_VAR_DITIO_IMAGES_BUCKET"] = BUCKET
    os.environ["AIRFLOW_VAR_DITIO_IMAGES_PREFIX"] = PREFIX


FAULTS = [
    ({"endpoint": "list", "action": "status", "nth": 2, "status": 503}, "list #2: 503"),
    (
        {"endpoint": "file", "action": "status", "nth": 3, "status": 429, "retry_after": 1},
        "file #3: 429 Retry-After 1",
    ),
    ({"endpoint": "file", "action": "truncate", "nth": 5}, "file #5: truncated"),
    ({"endpoint": "file", "action": "reset", "nth": 8}, "file #8: reset"),
]


def inject_faults(sandbox: dict) -> list[str]:
    """A few transient faults the sync must absorb, set through the sandbox's control API."""
    import requests

    rules = [rule for rule, _ in FAULTS]
    response = requests.post(f"{sandbox['control_url']}/faults", json=rules, timeout=10)
    response.raise_for_status()
    return [label for _, label in FAULTS]


def run_intervals(client) -> list[dict]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.db import resetdb

    resetdb(skip_init=False)
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["ditio_images"]
    rows = []
    for hour in range(HOURS):
        start = START + timedelta(hours=hour)
        began = time.monotonic()
        dagrun = dag.test(logical_date=start + timedelta(hours=1))
        seconds = time.monotonic() - began
        publish = dagrun.get_task_instance("publish_manifest")
        summary = publish.xcom_pull(task_ids="publish_manifest") if publish else None
        rows.append(
            {"state": str(dagrun.state), "seconds": seconds, "start": start, **(summary or {})}
        )
    return rows


def print_report(rows: list[dict], endpoint: str, faults: list[str]) -> None:
    header = f"{'interval (UTC)':<18}{'state':<9}{'rows':>6}{'files':>7}{'MB':>8}"
    header += f"{'written':>9}{'present':>9}{'rejects':>9}{'seconds':>9}"
    print("\n" + header)
    print("-" * len(header))
    for row in rows:
        run = row.get("run", {})
        print(
            f"{row['start']:%Y-%m-%d %H:%M}  {row['state']:<9}{row.get('rows', 0):>6}"
            f"{row.get('unique_files', 0):>7}{run.get('bytes', 0) / 1e6:>8.1f}"
            f"{run.get('stored', 0):>9}{run.get('present', 0):>9}"
            f"{row.get('rejected_rows', 0):>9}{row['seconds']:>9.1f}"
        )
    print(f"\nInjected faults, absorbed by retries: {'; '.join(faults)}")
    print(f"S3 endpoint (stopped now): {endpoint}, bucket {BUCKET}, prefix {PREFIX}")
    print(f"Copy of the bucket:        {DEMO / 'bucket'}")
    manifests = DEMO / "bucket" / PREFIX / "manifests"
    print(f"Manifests:                 {manifests}/dt=*/hour=*/images.jsonl")
    print(f"Airflow home (task logs):  {DEMO / 'airflow'}")


def copy_bucket(client) -> None:
    target = DEMO / "bucket"
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            path = target / item["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(BUCKET, item["Key"], str(path))


def main() -> int:
    prepare_airflow_home()
    from local_airflow import SandboxProcess
    from local_s3 import LocalS3

    logging.basicConfig(level=logging.WARNING)
    sandbox = SandboxProcess(photos=PHOTOS, hours=HOURS, start=START.isoformat()).start()
    try:
        with LocalS3() as s3:
            client = s3.client()
            client.create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
            )
            configure_connections(sandbox.info, s3)
            faults = inject_faults(sandbox.info)
            rows = run_intervals(client)
            copy_bucket(client)
            print_report(rows, s3.endpoint_url, faults)
    finally:
        sandbox.stop()
    failed = [row for row in rows if row["state"] != "success"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
