"""Shared test setup: make the plugins and include folders importable like Airflow does."""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for folder in ("plugins", "include"):
    path = str(ROOT / folder)
    if path not in sys.path:
        sys.path.insert(0, path)

# Airflow reads its configuration when first imported: point it at a private home first.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ditio-airflow-test-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "DITIO_IMAGES_RETRY_DELAY_SECONDS": "1",
        "DITIO_IMAGES_MAX_RETRY_MINUTES": "0.1",
    }
)
for name in list(os.environ):
    if name.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_")):
        del os.environ[name]


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
