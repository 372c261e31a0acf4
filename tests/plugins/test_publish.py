"""Publishing helpers against an S3 server process."""

from __future__ import annotations

from datetime import timedelta

from helpers import START, bucket_objects

from ditio_images.layout import Layout
from ditio_images.listing import run_staging
from ditio_images.publish import prune_staging
from ditio_images.retry import RetryPolicy
from ditio_images.s3store import S3Store


def test_prunes_only_other_runs_staging_that_stopped_changing(s3_client, bucket):
    store = S3Store(s3_client, bucket, policy=RetryPolicy(max_attempts=1))
    layout = Layout.create(bucket, "p")
    mine = run_staging(layout, START, "manual__mine")
    other = run_staging(layout, START, "scheduled__other")
    next_hour = run_staging(layout, START + timedelta(hours=1), "scheduled__other")
    for staging in (mine, other, next_hour):
        store.put_json(staging.checkpoint, {"pages": 1})
        store.put_bytes(staging.batch(1), b"{}\n", "application/x-ndjson")

    assert prune_staging(store, layout, START, keep=mine) == 0
    assert prune_staging(store, layout, START, keep=mine, older_than=timedelta(0)) == 2

    left = set(bucket_objects(s3_client, bucket))
    assert {mine.checkpoint, mine.batch(1), next_hour.checkpoint, next_hour.batch(1)} == left
