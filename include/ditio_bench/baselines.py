"""The two ways we compare against, written the way their documentation shows them.

- The vendor's sequential loop: page the listing with ``requests``, then for each row
  ``requests.get(downloadUrl, headers=auth)`` and ``s3.put_object(Body=response.content)``,
  one file at a time.
- The stock ``HttpToS3Operator`` way: one operator call per file, each with a fresh
  ``HttpHook`` session and ``S3Hook``, the whole body in memory (``response.content``) and
  ``S3Hook.load_bytes``. Run here without a scheduler, so Airflow's per-task cost is left out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import boto3
import requests

TIMEOUT = 300
FILES_CONN_ID = "ditio_files"
AWS_CONN_ID = "aws_default"


def fetch_token(sandbox: Mapping[str, Any]) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": sandbox["client_id"],
        "client_secret": sandbox["client_secret"],
        "scope": "reportingapiv1",
    }
    response = requests.post(sandbox["token_url"], data=form, timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()["access_token"]


def vendor_rows(
    sandbox: Mapping[str, Any], headers: Mapping[str, str], since: str, before: str
) -> Iterator[dict[str, Any]]:
    """The documented paging loop: follow ``continuationToken`` until it is empty."""
    params = {"ModifiedSince": since, "ModifiedBefore": before, "ChunkLimit": 2500}
    while True:
        page = requests.get(
            f"{sandbox['base_url']}/v1/images", headers=headers, params=params, timeout=TIMEOUT
        ).json()
        yield from page["data"]
        continuation = page.get("continuationToken")
        if not continuation:
            return
        params["ContinuationToken"] = continuation


def first_rows(rows: Iterator[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    chosen: dict[str, dict[str, Any]] = {}
    for row in rows:
        chosen.setdefault(row["id"], row)
        if len(chosen) >= limit:
            break
    return list(chosen.values())


def object_key(prefix: str, row: Mapping[str, Any]) -> str:
    return f"{prefix}images/{row['id']}/original.jpg"


def plain_s3_client(endpoint_url: str) -> Any:
    """``boto3.client("s3")`` with default settings, pointed at the local endpoint."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox-secret",
        region_name="eu-north-1",
    )


def vendor_loop(
    rows: list[dict[str, Any]], headers: Mapping[str, str], s3: Any, bucket: str, prefix: str
) -> int:
    """Download and store each row's original, one at a time; returns the bytes stored."""
    stored = 0
    for row in rows:
        response = requests.get(row["downloadUrl"], headers=headers, timeout=TIMEOUT)
        response.raise_for_status()
        s3.put_object(
            Bucket=bucket,
            Key=object_key(prefix, row),
            Body=response.content,
            ContentType=response.headers.get("Content-Type", "application/octet-stream"),
        )
        stored += len(response.content)
    return stored


def configure_operator_connections(sandbox: Mapping[str, Any], s3_endpoint: str) -> None:
    """Point the operator's ``http`` and ``aws`` connections at the local servers."""
    core = urlsplit(sandbox["core_url"])
    http = {"conn_type": "http", "host": core.hostname, "port": core.port, "schema": "http"}
    aws = {
        "conn_type": "aws",
        "login": "sandbox",
        "password": "sandbox-secret",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "eu-north-1"},
    }
    os.environ[f"AIRFLOW_CONN_{FILES_CONN_ID.upper()}"] = json.dumps(http)
    os.environ[f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}"] = json.dumps(aws)


def operator_way(
    rows: list[dict[str, Any]], headers: Mapping[str, str], bucket: str, prefix: str
) -> list[str]:
    """One ``HttpToS3Operator`` execution per row; returns the errors it raised."""
    from airflow.providers.amazon.aws.transfers.http_to_s3 import HttpToS3Operator

    errors = []
    for number, row in enumerate(rows):
        operator = HttpToS3Operator(
            task_id=f"file_{number}",
            http_conn_id=FILES_CONN_ID,
            endpoint=urlsplit(row["downloadUrl"]).path,
            method="GET",
            headers=dict(headers),
            s3_bucket=bucket,
            s3_key=object_key(prefix, row),
            aws_conn_id=AWS_CONN_ID,
        )
        try:
            operator.execute(context={})
        except ValueError as err:
            # load_bytes(replace=False) refuses a key that exists, after the body was fetched.
            errors.append(str(err))
    return errors
