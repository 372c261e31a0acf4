"""Our download path, built the way the Airflow hook and operators build it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import requests
from botocore.config import Config

from ditio_images.auth import TokenProvider
from ditio_images.client import DitioClient
from ditio_images.downloader import BatchDownloader, DownloadSettings
from ditio_images.layout import Layout
from ditio_images.listing import ListingRequest
from ditio_images.pager import Pager
from ditio_images.retry import RetryPolicy
from ditio_images.rows import file_entry
from ditio_images.s3store import MIB, S3Store

ACCESS_KEY = "sandbox"
SECRET_KEY = "sandbox-secret"
REGION = "eu-north-1"
VARIANTS = ("original",)


@dataclass(frozen=True)
class Tuning:
    """The knobs a download task has (defaults: the operators' defaults)."""

    in_flight: int = 16
    files_per_batch: int = 2000
    part_size_mb: int = 8
    part_concurrency: int = 2

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Tuning:
        return cls(**(data or {}))


def s3_client(endpoint_url: str, connections: int = 10) -> Any:
    """A boto3 client for the local S3 endpoint, configured like the operators' one."""
    config = Config(
        retries={"max_attempts": 1, "mode": "standard"},
        max_pool_connections=max(10, connections),
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=config,
    )


def ditio_client(sandbox: Mapping[str, Any], pool_size: int = 16) -> DitioClient:
    """A client with its own token cache and pool, as ``DitioHook.get_conn()`` builds it."""
    policy = RetryPolicy()
    session = requests.Session()
    tokens = TokenProvider(
        token_url=sandbox["token_url"],
        client_id=sandbox["client_id"],
        client_secret=sandbox["client_secret"],
        session=session,
        policy=policy,
    )
    return DitioClient(
        base_url=sandbox["base_url"],
        tokens=tokens,
        session=session,
        policy=policy,
        pool_size=pool_size,
    )


def s3_store(endpoint_url: str, bucket: str, tuning: Tuning, connections: int = 10) -> S3Store:
    return S3Store(
        s3_client(endpoint_url, connections),
        bucket,
        policy=RetryPolicy(),
        part_size=tuning.part_size_mb * MIB,
        part_concurrency=tuning.part_concurrency,
    )


def downloader(
    sandbox: Mapping[str, Any], endpoint_url: str, bucket: str, prefix: str, tuning: Tuning
) -> BatchDownloader:
    """A batch downloader wired like ``DitioDownloadBatchOperator`` wires it."""
    client = ditio_client(sandbox, pool_size=tuning.in_flight)
    store = s3_store(endpoint_url, bucket, tuning, connections=tuning.in_flight * 2)
    return BatchDownloader(
        client=client,
        store=store,
        layout=Layout.create(bucket, prefix),
        policy=client.policy,
        settings=DownloadSettings(in_flight=tuning.in_flight),
    )


def list_rows(client: DitioClient, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """Every row of ``[start, end)``, page by page."""
    request = ListingRequest(start=start, end=end)
    pager = Pager()
    while not pager.finished:
        envelope = client.list_images(pager.params(request.params()))
        yield from envelope["data"]
        pager.advance(envelope)


def list_entries(
    sandbox: Mapping[str, Any], start: datetime, end: datetime, limit: int | None = None
) -> list[dict[str, Any]]:
    """Batch entries of the first ``limit`` unique files of ``[start, end)``."""
    client = ditio_client(sandbox)
    entries: dict[str, dict[str, Any]] = {}
    try:
        for row in list_rows(client, start, end):
            entries.setdefault(row["id"], file_entry(row, VARIANTS))
            if limit is not None and len(entries) >= limit:
                break
    finally:
        client.close()
    return list(entries.values())


def batches(entries: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for first in range(0, len(entries), max(1, size)):
        yield entries[first : first + size]
