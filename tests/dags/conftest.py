"""Fixtures that run the real DAG with ``dag.test()`` against the sandbox and S3."""

from __future__ import annotations

import pytest
from dagstack import DEFAULT_PARAMS, Stack, make_stack
from helpers import ROOT


@pytest.fixture(scope="session")
def airflow_db():
    """A fresh Airflow metadata database, once per test session."""
    from airflow.utils.db import resetdb

    resetdb(skip_init=False)


@pytest.fixture(scope="session")
def dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["ditio_images"]
    DEFAULT_PARAMS.update({name: dag.params[name] for name in dag.params})
    return dag


@pytest.fixture
def stack(request, monkeypatch, dag, s3_client, bucket) -> Stack:
    return make_stack(request, monkeypatch, dag, s3_client, bucket)
