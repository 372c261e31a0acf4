"""A listing killed mid-way resumes from its checkpoint (real sandbox, real S3 server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import HOUR, ROOT, START, sandbox_client

from ditio_images.exceptions import DitioBadRequest, DitioRetryableError
from ditio_images.layout import Layout
from ditio_images.listing import (
    ListingRequest,
    Staging,
    iter_staged_rows,
    list_interval,
    plan_downloads,
    run_staging,
)
from ditio_images.retry import RetryPolicy
from ditio_images.s3store import S3Store, gzip_stream

POLICY = RetryPolicy(max_attempts=2, backoff_base=0, jitter=0, read_timeout=60)
CHUNK = 2

CHILD = """
import sys
from datetime import datetime
import boto3, requests
from ditio_images.auth import TokenProvider
from ditio_images.client import DitioClient
from ditio_images.layout import Layout
from ditio_images.listing import ListingRequest, list_interval
from ditio_images.exceptions import DitioBadRequest, DitioRetryableError
from ditio_images.retry import RetryPolicy
from ditio_images.s3store import S3Store, gzip_stream

base, token_url, endpoint, bucket, start, end, chunk = sys.argv[1:]
policy = RetryPolicy(max_attempts=2, backoff_base=0, jitter=0, read_timeout=600)
session = requests.Session()
tokens = TokenProvider(token_url=token_url, client_id="sandbox", client_secret="sandbox-secret",
                       session=session, policy=policy)
client = DitioClient(base_url=base, tokens=tokens, session=session, policy=policy)
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="a", aws_secret_access_key="b",
                  region_name="eu-north-1")
request = ListingRequest(datetime.fromisoformat(start), datetime.fromisoformat(end),
                         chunk_limit=int(chunk))
list_interval(client, S3Store(s3, bucket, policy=policy), Layout.create(bucket, ""), request)
"""


@pytest.fixture
def sandbox():
    from ditio_sandbox import Sandbox, Tenant

    with Sandbox(tenant=Tenant(seed=3, start=START, hours=1)) as server:
        yield server


@pytest.fixture
def parts(sandbox, s3_client, bucket):
    store = S3Store(s3_client, bucket, policy=POLICY)
    return sandbox_client(sandbox, POLICY), store, Layout.create(bucket, "")


def expected_identities(sandbox):
    rows = sandbox.tenant.rows_between(START, START + HOUR)
    return sorted((r["id"], r["collectionRef"], r["idRef"]) for r in rows)


def staged_identities(store, layout):
    plan = plan_downloads(
        store, layout, START, variants=["original"], files_per_batch=100, max_groups=10
    )
    staging = Staging(layout.staging_folder(START))
    rows = list(iter_staged_rows(store, staging, plan.pages))
    return sorted((r["id"], r["collectionRef"], r["idRef"]) for r in rows), plan


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_a_killed_listing_resumes_at_the_next_page(sandbox, parts, local_s3, bucket):
    client, store, layout = parts
    killed_on = 4
    sandbox.faults.add("list", "stall", nth=killed_on, seconds=60)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), *sys.path])}
    args = [sandbox.base_url, sandbox.token_url, local_s3.endpoint_url, bucket]
    args += [START.isoformat(), (START + HOUR).isoformat(), str(CHUNK)]
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env)
    try:
        wait_for(lambda: sandbox.stats.count("list") >= killed_on)
        staging = Staging(layout.staging_folder(START))
        wait_for(lambda: (store.get_json(staging.checkpoint) or {}).get("pages") == killed_on - 1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    sandbox.faults.clear()
    sandbox.stats.reset()

    outcome = list_interval(
        client, store, layout, ListingRequest(START, START + HOUR, chunk_limit=CHUNK)
    )

    assert outcome.resumed_from_page == killed_on - 1
    first = sandbox.stats.log("list")[0]
    assert "ContinuationToken" in json.dumps(first["query"])
    staged, plan = staged_identities(store, layout)
    assert staged == expected_identities(sandbox)
    assert plan.duplicate_rows == 0


def test_a_rejected_saved_token_restarts_the_interval(sandbox, parts):
    client, store, layout = parts
    request = ListingRequest(START, START + HOUR, chunk_limit=CHUNK)
    staging = Staging(layout.staging_folder(START))
    store.put_json(
        staging.checkpoint,
        {
            "fingerprint": request.fingerprint(),
            "token": "not-a-token",
            "pages": 3,
            "rows": 9,
            "finished": False,
        },
    )

    outcome = list_interval(client, store, layout, request)

    assert outcome.restarted
    staged, _ = staged_identities(store, layout)
    assert staged == expected_identities(sandbox)


def test_a_finished_or_different_listing_is_not_resumed(sandbox, parts):
    client, store, layout = parts
    list_interval(client, store, layout, ListingRequest(START, START + HOUR, chunk_limit=CHUNK))
    sandbox.stats.reset()

    other = ListingRequest(START, START + HOUR, chunk_limit=CHUNK + 1)
    outcome = list_interval(client, store, layout, other)

    assert outcome.resumed_from_page == 0
    assert "ContinuationToken" not in json.dumps(sandbox.stats.log("list")[0]["query"])
    staged, _ = staged_identities(store, layout)
    assert staged == expected_identities(sandbox)


def plan_of(store, layout, staging):
    return plan_downloads(
        store,
        layout,
        START,
        variants=["original"],
        files_per_batch=100,
        max_groups=10,
        staging=staging,
    )


def test_overlapping_runs_of_one_hour_keep_their_own_staging(sandbox, parts):
    client, store, layout = parts
    everything = ListingRequest(START, START + HOUR, chunk_limit=CHUNK)
    project = sandbox.tenant.rows_between(START, START + HOUR)[0]["projectId"]
    one_project = ListingRequest(START, START + HOUR, chunk_limit=CHUNK, project_id=project)
    first = run_staging(layout, START, "scheduled__2026-04-12T07:00:00+00:00")
    second = run_staging(layout, START, "manual__2026-04-12T07:40:00+00:00")
    assert first.folder != second.folder

    list_interval(client, store, layout, everything, staging=first)
    list_interval(client, store, layout, one_project, staging=second)

    assert plan_of(store, layout, first).unique_rows == len(expected_identities(sandbox))
    assert plan_of(store, layout, second).unique_rows == len(
        sandbox.tenant.rows_between(START, START + HOUR, project_id=project)
    )


def test_staging_that_changed_after_the_listing_is_not_planned(sandbox, parts):
    client, store, layout = parts
    staging = run_staging(layout, START, "a-run")
    list_interval(client, store, layout, ListingRequest(START, START + HOUR), staging=staging)
    store.upload_stream(staging.page(1), gzip_stream([]), content_type="application/gzip")

    with pytest.raises(DitioRetryableError, match="changed underneath"):
        plan_of(store, layout, staging)


def test_more_files_than_1024_single_file_batches_still_map_to_1024_tasks(parts, s3_client):
    from ditio_images.operators import DitioListImagesOperator
    from ditio_sandbox import Sandbox, Tenant

    client, store, layout = parts
    cap = DitioListImagesOperator(task_id="cap", bucket="b")._max_groups()
    assert cap == 1024
    tenant = Tenant(seed=4, start=START, hours=1, parents_per_hour=500, shared_files=0)
    with Sandbox(tenant=tenant) as big:
        files = {row["id"] for row in big.tenant.rows_between(START, START + HOUR)}
        assert len(files) > cap
        list_interval(
            sandbox_client(big, POLICY), store, layout, ListingRequest(START, START + HOUR)
        )
    plan = plan_downloads(
        store, layout, START, variants=["original"], files_per_batch=1, max_groups=cap
    )

    assert plan.batches == len(files) and len(plan.groups) == cap
    covered = [n for first, last in plan.groups for n in range(first, last + 1)]
    assert covered == list(range(1, len(files) + 1))


def test_a_400_on_a_fresh_listing_fails_instead_of_restarting(sandbox, parts):
    client, store, layout = parts
    sandbox.faults.add("list", "status", nth=1, status=400)

    with pytest.raises(DitioBadRequest):
        list_interval(client, store, layout, ListingRequest(START, START + HOUR))
    assert sandbox.stats.count("list") == 1


def test_a_400_right_after_a_restart_fails_instead_of_looping(sandbox, parts):
    client, store, layout = parts
    request = ListingRequest(START, START + HOUR, chunk_limit=CHUNK)
    staging = Staging(layout.staging_folder(START))
    checkpoint = {"fingerprint": request.fingerprint(), "token": "stale", "pages": 2, "rows": 4}
    store.put_json(staging.checkpoint, {**checkpoint, "finished": False})
    sandbox.faults.add("list", "status", start=2, end=2, status=400)

    with pytest.raises(DitioBadRequest):
        list_interval(client, store, layout, request)
    assert sandbox.stats.count("list") == 2
