"""Shared test setup: make the plugins and include folders importable like Airflow does."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for folder in ("plugins", "include"):
    path = str(ROOT / folder)
    if path not in sys.path:
        sys.path.insert(0, path)


_bucket_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def local_s3():
    """One moto S3 server process for the whole test session, on a loopback port."""
    from local_s3 import LocalS3

    with LocalS3() as server:
        yield server


@pytest.fixture
def s3_client(local_s3):
    return local_s3.client()


@pytest.fixture
def bucket(s3_client) -> str:
    """A fresh, empty bucket per test."""
    name = f"test-bucket-{next(_bucket_numbers)}"
    s3_client.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
    )
    return name


def bucket_objects(s3_client, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object in the bucket under ``prefix``, key to bytes."""
    found = {}
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = s3_client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found
