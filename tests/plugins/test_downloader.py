"""The batch downloader against the sandbox API and an S3 server process."""

from __future__ import annotations

import pytest
from helpers import START, bucket_objects, sandbox_client

from ditio_images.downloader import BatchDownloader, DownloadSettings
from ditio_images.layout import Layout
from ditio_images.retry import RetryPolicy
from ditio_images.rows import file_entry
from ditio_images.s3store import S3Store

POLICY = RetryPolicy(max_attempts=2, backoff_base=0, jitter=0)


@pytest.fixture
def sandbox():
    from ditio_sandbox import Sandbox, Tenant

    with Sandbox(tenant=Tenant(seed=5, start=START, hours=1, parents_per_hour=10)) as server:
        yield server


def downloader(sandbox, s3_client, bucket, in_flight):
    client = sandbox_client(sandbox, POLICY)
    store = S3Store(s3_client, bucket, policy=POLICY)
    settings = DownloadSettings(in_flight=in_flight)
    layout = Layout.create(bucket, "")
    return BatchDownloader(
        client=client, store=store, layout=layout, policy=POLICY, settings=settings
    )


def entries(sandbox):
    unique = {row["id"]: row for row in sandbox.tenant.rows()}
    return [file_entry(row, ["original"]) for row in unique.values()]


def test_streams_every_file_with_at_most_in_flight_downloads(sandbox, s3_client, bucket):
    sandbox.faults.add("file", "latency", seconds=0.05)
    batch = entries(sandbox)

    result = downloader(sandbox, s3_client, bucket, in_flight=3).run(batch, ["original"])

    assert result.stats["stored"] == len(batch)
    assert 2 <= sandbox.stats.max_in_flight("file") <= 3
    stored = bucket_objects(s3_client, bucket, "images/")
    for entry in batch:
        (key,) = [k for k in stored if k.startswith(f"images/{entry['id']}/original.")]
        assert stored[key] == sandbox.tenant.original_bytes(entry["id"])


def test_a_deleted_file_is_recorded_missing_and_the_rest_stored(sandbox, s3_client, bucket):
    batch = entries(sandbox)
    gone = batch[0]["id"]
    sandbox.faults.add("file", "status", file_id=gone, status=404)

    result = downloader(sandbox, s3_client, bucket, in_flight=4).run(batch, ["original"])

    assert result.files[gone]["status"] == {"original": "missing"}
    assert result.stats == {"missing": 1, "stored": len(batch) - 1, "bytes": result.stats["bytes"]}


def test_a_second_run_downloads_nothing(sandbox, s3_client, bucket):
    batch = entries(sandbox)
    first = downloader(sandbox, s3_client, bucket, in_flight=4).run(batch, ["original"])
    sandbox.stats.reset()

    again = downloader(sandbox, s3_client, bucket, in_flight=4).run(batch, ["original"])

    assert sandbox.stats.count("file") == 0
    assert again.stats == {"present": len(batch)}
    assert again.files == first.files
