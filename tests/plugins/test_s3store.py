"""The S3 store against a real S3 server process (moto), asserting on stored objects."""

from __future__ import annotations

import gzip

import pytest
from helpers import bucket_objects

from ditio_images.exceptions import DitioConfigError, DitioIncompleteBody
from ditio_images.layout import Layout
from ditio_images.retry import RetryPolicy
from ditio_images.s3store import MIB, S3Store, gzip_stream, json_line

POLICY = RetryPolicy(max_attempts=2, backoff_base=0, jitter=0)


@pytest.fixture
def store(s3_client, bucket):
    return S3Store(s3_client, bucket, policy=POLICY, part_size=5 * MIB, part_concurrency=2)


def chunks(total: int, size: int = 700_000):
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        yield bytes([sent % 251]) * piece
        sent += piece


def test_small_body_goes_up_in_one_put(store, s3_client, bucket):
    size = store.upload_stream("a/small.jpg", chunks(123_456), content_type="image/jpeg")
    head = s3_client.head_object(Bucket=bucket, Key="a/small.jpg")
    assert size == 123_456 and head["ContentLength"] == 123_456
    assert head["ContentType"] == "image/jpeg"


def test_large_body_is_a_completed_multipart_upload_with_the_same_bytes(store, s3_client, bucket):
    total = 12 * MIB + 17
    store.upload_stream("a/big.bin", chunks(total), content_type="image/heic", expected_size=total)
    stored = bucket_objects(s3_client, bucket)["a/big.bin"]
    assert stored == b"".join(chunks(total))
    assert "-" in s3_client.head_object(Bucket=bucket, Key="a/big.bin")["ETag"]


def test_a_failing_stream_leaves_no_object_and_no_open_upload(store, s3_client, bucket):
    def broken():
        yield from chunks(11 * MIB)
        raise ConnectionResetError("peer reset mid-body")

    with pytest.raises(ConnectionResetError):
        store.upload_stream("a/broken.bin", broken(), content_type="image/jpeg")
    assert bucket_objects(s3_client, bucket) == {}
    assert not s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.mark.parametrize("total", [1000, 6 * MIB])
def test_a_size_mismatch_leaves_no_object(store, s3_client, bucket, total):
    with pytest.raises(DitioIncompleteBody):
        store.upload_stream("a/short.jpg", chunks(total), content_type="x", expected_size=total + 1)
    assert bucket_objects(s3_client, bucket) == {}
    assert not s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_reads_lines_back_plain_and_gzipped(store):
    records = [{"n": n, "name": "Åse"} for n in range(2000)]
    store.upload_stream("p.jsonl", (json_line(r) for r in records), content_type="x")
    zipped = gzip_stream(json_line(r) for r in records)
    store.upload_stream("p.jsonl.gz", zipped, content_type="x")
    assert list(store.iter_lines("p.jsonl")) == [json_line(r) for r in records]
    assert list(store.iter_lines("p.jsonl.gz")) == [json_line(r) for r in records]
    assert gzip.decompress(store.get_bytes("p.jsonl.gz")).count(b"\n") == 2000


def test_missing_key_reads_as_none(store):
    assert store.get_bytes("nope") is None and store.get_json("nope") is None


def test_existing_objects_lists_ranges_instead_of_one_request_per_object(store, s3_client, bucket):
    layout = Layout.create(bucket, "p")
    ids = [f"{n:024x}" for n in range(0, 2600, 2)]
    for file_id in ids:
        s3_client.put_object(Bucket=bucket, Key=layout.image_key(file_id, "original", "image/png"))
    s3_client.put_object(Bucket=bucket, Key=layout.image_key(ids[7], "thumbnail", "image/jpeg"))
    s3_client.put_object(Bucket=bucket, Key="p/images/not-an-id!/original.jpg")

    wanted = ids[:1200] + [f"{n:024x}" for n in range(1, 300, 2)]
    before = store.calls
    found = store.existing_objects(layout, wanted)

    assert set(found) == {(i, "original") for i in ids[:1200]} | {(ids[7], "thumbnail")}
    assert found[(ids[7], "thumbnail")].endswith("/thumbnail.jpg")
    assert store.calls - before <= 3


def test_existing_objects_of_an_empty_bucket_costs_one_request(store, bucket):
    before = store.calls
    assert store.existing_objects(Layout.create(bucket, ""), ["a", "b", "c"]) == {}
    assert store.calls - before == 1


def test_delete_prefix_removes_only_that_prefix(store, s3_client, bucket):
    for key in ["s/1", "s/2", "t/1"]:
        store.put_bytes(key, b"x", "text/plain")
    assert store.delete_prefix("s/") == 2
    assert list(bucket_objects(s3_client, bucket)) == ["t/1"]


@pytest.mark.parametrize(
    ("bucket_name", "reason"),
    [("no-such-bucket-here", "does not exist"), ("../etc", "not")],
)
def test_a_bucket_that_cannot_work_fails_at_once_naming_the_setting(s3_client, bucket_name, reason):
    store = S3Store(s3_client, bucket_name, policy=RetryPolicy(max_attempts=5, backoff_base=0))
    with pytest.raises(DitioConfigError, match=reason) as caught:
        store.put_bytes("k", b"x", "text/plain")
    assert "ditio_images_bucket" in str(caught.value)
    assert store.calls == 1
