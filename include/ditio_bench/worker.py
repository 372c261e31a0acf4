"""Child process: run one measured job and print its result as one JSON line.

``python -m ditio_bench.worker KIND`` reads the job's JSON spec from stdin. Every job builds
its clients first, then measures only its work phase (see :class:`~ditio_bench.measure.Meter`),
so the CPU time and peak memory reported are this process's own.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from ditio_bench import baselines, ours
from ditio_bench.measure import Meter
from ditio_bench.servers import ROOT
from ditio_images.downloader import BatchDownloader
from ditio_images.layout import Layout
from ditio_images.listing import (
    ListingRequest,
    Plan,
    Staging,
    list_interval,
    plan_downloads,
    read_batch,
)
from ditio_images.publish import publish_interval
from ditio_images.s3store import S3Store


def _window(spec: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(spec["start"]), datetime.fromisoformat(spec["end"])


def _entries(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(Path(spec["entries_file"]).read_text(encoding="utf-8"))


def batch_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Our path: ``BatchDownloader`` over the entries, ``files_per_batch`` at a time."""
    tuning = ours.Tuning.from_json(spec.get("tuning"))
    entries = _entries(spec)
    downloader = ours.downloader(
        spec["sandbox"], spec["s3"], spec["bucket"], spec["prefix"], tuning
    )
    downloader.client.tokens.token()
    stats: dict[str, int] = {}
    with Meter() as meter:
        for batch in ours.batches(entries, tuning.files_per_batch):
            result = downloader.run(batch, ours.VARIANTS)
            for name, value in result.stats.items():
                stats[name] = stats.get(name, 0) + value
    return {
        **meter.to_json(),
        "files": len(entries),
        "stats": stats,
        "s3_calls": downloader.store.calls,
    }


def sequential_job(spec: dict[str, Any]) -> dict[str, Any]:
    """The vendor's loop over the first ``limit`` files of the window."""
    headers = {"Authorization": f"Bearer {baselines.fetch_token(spec['sandbox'])}"}
    since, before = spec["since"], spec["before"]
    rows = baselines.first_rows(
        baselines.vendor_rows(spec["sandbox"], headers, since, before), spec["limit"]
    )
    s3 = baselines.plain_s3_client(spec["s3"])
    with Meter() as meter:
        stored = baselines.vendor_loop(rows, headers, s3, spec["bucket"], spec["prefix"])
    return {**meter.to_json(), "files": len(rows), "bytes": stored}


def operator_job(spec: dict[str, Any]) -> dict[str, Any]:
    """The stock operator way over the first ``limit`` files of the window."""
    baselines.configure_operator_connections(spec["sandbox"], spec["s3"])
    headers = {"Authorization": f"Bearer {baselines.fetch_token(spec['sandbox'])}"}
    rows = baselines.first_rows(
        baselines.vendor_rows(spec["sandbox"], headers, spec["since"], spec["before"]),
        spec["limit"],
    )
    _warm_operator_imports()
    with count_s3_requests() as s3_requests, Meter() as meter:
        errors = baselines.operator_way(rows, headers, spec["bucket"], spec["prefix"])
    return {
        **meter.to_json(),
        "files": len(rows),
        "bytes": sum(int(row.get("fileSize") or 0) for row in rows),
        "refused": len(errors),
        "s3_requests": s3_requests(),
    }


def whole_body_job(spec: dict[str, Any]) -> dict[str, Any]:
    """One large file the stock operator way: the whole body in memory, then load_bytes."""
    baselines.configure_operator_connections(spec["sandbox"], spec["s3"])
    headers = {"Authorization": f"Bearer {baselines.fetch_token(spec['sandbox'])}"}
    row = {"id": spec["file_id"], "downloadUrl": spec["url"]}
    _warm_operator_imports()
    with Meter() as meter:
        baselines.operator_way([row], headers, spec["bucket"], spec["prefix"])
    return {**meter.to_json(), "files": 1, "bytes": spec["size"]}


def listing_job(spec: dict[str, Any]) -> dict[str, Any]:
    """``list_interval`` + ``plan_downloads`` of one interval, as the list task runs them."""
    tuning = ours.Tuning.from_json(spec.get("tuning"))
    start, end = _window(spec)
    client = ours.ditio_client(spec["sandbox"])
    client.tokens.token()
    store = ours.s3_store(spec["s3"], spec["bucket"], tuning)
    layout = Layout.create(spec["bucket"], spec["prefix"])
    largest_page = _track_largest_page(client)
    with Meter() as meter:
        listed = list_interval(client, store, layout, ListingRequest(start=start, end=end))
        plan = _plan(store, layout, start, tuning, spec["max_map_length"])
        descriptors = [{"first": first, "last": last} for first, last in plan.groups]
    return {
        **meter.to_json(),
        "pages": listed.pages,
        "largest_page_rows": largest_page(),
        "rows": plan.rows,
        "unique_files": plan.unique_files,
        "batches": plan.batches,
        "descriptors": len(descriptors),
        "xcom_bytes": len(json.dumps(descriptors)),
        "per_file_xcom_bytes": _per_file_xcom_bytes(store, layout, start, plan.batches),
    }


def _track_largest_page(client: Any) -> Callable[[], int]:
    """Wrap ``client.list_images`` to remember the most rows one page held."""
    largest = [0]
    list_images = client.list_images

    def tracked(params: Any, *, context: str = "") -> dict[str, Any]:
        envelope = list_images(params, context=context)
        largest[0] = max(largest[0], len(envelope["data"]))
        return envelope

    client.list_images = tracked
    return lambda: largest[0]


def _plan(
    store: S3Store, layout: Layout, start: datetime, tuning: ours.Tuning, max_map_length: int
) -> Plan:
    return plan_downloads(
        store,
        layout,
        start,
        variants=ours.VARIANTS,
        files_per_batch=tuning.files_per_batch,
        max_groups=max_map_length,
    )


def _per_file_xcom_bytes(store: S3Store, layout: Layout, start: datetime, batches: int) -> int:
    """JSON size of mapping one task per file instead: every batch entry pushed to XCom."""
    staging = Staging(layout.staging_folder(start))
    entries = (
        entry for number in range(1, batches + 1) for entry in read_batch(store, staging, number)
    )
    return 2 + sum(len(json.dumps(entry)) + 2 for entry in entries)


def interval_job(spec: dict[str, Any]) -> dict[str, Any]:
    """The whole interval in one process: list, plan, download every batch, publish."""
    tuning = ours.Tuning.from_json(spec.get("tuning"))
    start, end = _window(spec)
    layout = Layout.create(spec["bucket"], spec["prefix"])
    client = ours.ditio_client(spec["sandbox"])
    client.tokens.token()
    store = ours.s3_store(spec["s3"], spec["bucket"], tuning)
    downloader = ours.downloader(
        spec["sandbox"], spec["s3"], spec["bucket"], spec["prefix"], tuning
    )
    downloader.client.tokens.token()

    phases: dict[str, float] = {}
    with Meter() as meter:
        with _phase(phases, "list"):
            list_interval(client, store, layout, ListingRequest(start=start, end=end))
            plan = _plan(store, layout, start, tuning, spec["max_map_length"])
        with _phase(phases, "download"):
            stats = _download_all(downloader, store, Staging(layout.staging_folder(start)), plan)
        with _phase(phases, "publish"):
            summary = publish_interval(store, layout, start, end)
    return {
        **meter.to_json(),
        "phases": phases,
        "rows": plan.rows,
        "unique_files": plan.unique_files,
        "batches": plan.batches,
        "stats": stats,
        "download_s3_calls": downloader.store.calls,
        "manifest_rows": summary["manifest_rows"],
    }


def _download_all(
    downloader: BatchDownloader, store: S3Store, staging: Staging, plan: Plan
) -> dict[str, int]:
    """Every batch of the plan, one after another, as the mapped download tasks run them."""
    stats: dict[str, int] = {}
    for number in range(1, plan.batches + 1):
        result = downloader.run(read_batch(store, staging, number), ours.VARIANTS)
        store.put_json(staging.results(number), result.to_json())
        for name, value in result.stats.items():
            stats[name] = stats.get(name, 0) + value
    return stats


def dag_test_job(spec: dict[str, Any]) -> dict[str, Any]:
    """The real DAG for one interval through ``dag.test()`` (the smoke stand-in for a scheduler)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.db import resetdb

    _airflow_connections(spec)
    resetdb(skip_init=False)
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["ditio_images"]
    conf = ours.Tuning.from_json(spec.get("tuning"))
    dag_run = dag.test(
        logical_date=datetime.fromisoformat(spec["end"]),
        run_conf={"files_per_batch": conf.files_per_batch},
    )
    instances = dag_run.get_task_instances()
    # dag.test() dates the run itself by its logical date: time it by its task instances.
    began = min(ti.start_date for ti in instances if ti.start_date)
    ended = max(ti.end_date for ti in instances if ti.end_date)
    tasks = [
        {
            "task_id": ti.task_id,
            "map_index": ti.map_index,
            "state": str(ti.state),
            "duration": ti.duration,
        }
        for ti in instances
    ]
    return {
        "state": str(dag_run.state),
        "run_wall_s": (ended - began).total_seconds(),
        "tasks": tasks,
    }


def _airflow_connections(spec: dict[str, Any]) -> None:
    """The DAG's ``ditio_default``/``aws_default`` connections and bucket, as environment."""
    info = spec["sandbox"]
    ditio = {
        "conn_type": "http",
        "host": info["base_url"],
        "login": info["client_id"],
        "password": info["client_secret"],
        "extra": {"token_url": info["token_url"]},
    }
    os.environ["AIRFLOW_CONN_DITIO_DEFAULT"] = json.dumps(ditio)
    os.environ["AIRFLOW_VAR_DITIO_IMAGES_BUCKET"] = spec["bucket"]
    baselines.configure_operator_connections(info, spec["s3"])


@contextmanager
def _phase(phases: dict[str, float], name: str) -> Iterator[None]:
    began = time.monotonic()
    yield
    phases[name] = time.monotonic() - began


def _warm_operator_imports() -> None:
    """Import what the operator imports lazily, so the measured phase holds only its work."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401
    from airflow.providers.amazon.aws.transfers.http_to_s3 import HttpToS3Operator  # noqa: F401
    from airflow.providers.http.hooks.http import HttpHook  # noqa: F401


@contextmanager
def count_s3_requests() -> Iterator[Callable[[], int]]:
    """Count every HTTP request botocore sends in this process while the block runs."""
    from botocore.endpoint import Endpoint

    original = Endpoint.make_request
    lock = threading.Lock()
    sent = [0]

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            sent[0] += 1
        return original(self, *args, **kwargs)

    Endpoint.make_request = counted  # type: ignore[method-assign]
    try:
        yield lambda: sent[0]
    finally:
        Endpoint.make_request = original  # type: ignore[method-assign]


JOBS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "batch": batch_job,
    "sequential": sequential_job,
    "operator": operator_job,
    "whole_body": whole_body_job,
    "listing": listing_job,
    "interval": interval_job,
    "dag_test": dag_test_job,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in JOBS:
        print(f"usage: python -m ditio_bench.worker {{{','.join(JOBS)}}}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = JOBS[args[0]](json.load(sys.stdin))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
