"""Helpers shared by test modules (fixtures live in the conftest files)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_PHOTOS = ROOT.parent / "shared" / "sample-photos"
# Real photos make the sandbox tenant richer (HEIC, large phone JPEGs) when they sit beside the
# clone; every test also passes with generated images only.
SAMPLE_PHOTOS = _PHOTOS if _PHOTOS.is_dir() else None
START = datetime(2026, 4, 12, 6, tzinfo=UTC)
HOUR = timedelta(hours=1)


def bucket_objects(s3_client: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object in the bucket under ``prefix``, key to bytes."""
    found = {}
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3_client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"]] = body
    return found


def read_jsonl(body: bytes) -> list[Any]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def sandbox_client(sandbox: Any, policy: Any) -> Any:
    """A Ditio client for a running sandbox, with its own token cache."""
    import requests

    from ditio_images.auth import TokenProvider
    from ditio_images.client import DitioClient

    info = sandbox.info()
    tokens = TokenProvider(
        token_url=sandbox.token_url,
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        session=requests.Session(),
        policy=policy,
    )
    return DitioClient(base_url=sandbox.base_url, tokens=tokens, policy=policy)
