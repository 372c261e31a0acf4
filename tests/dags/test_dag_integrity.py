"""Every DAG loads with no connections or variables defined, and wires only tasks."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    assert not [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]
    return DagBag(dag_folder=str(DAGS))


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "ditio_images" in dagbag.dag_ids


def test_the_dag_has_real_hourly_data_intervals(dagbag):
    from datetime import timedelta

    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    timetable = coerce_to_core_timetable(dagbag.dags["ditio_images"].timetable)
    last = DataInterval(pendulum.datetime(2026, 4, 12, 5), pendulum.datetime(2026, 4, 12, 6))
    restriction = TimeRestriction(earliest=None, latest=None, catchup=True)
    following = timetable.next_dagrun_info(
        last_automated_data_interval=last, restriction=restriction
    )
    assert following.data_interval.start == last.end
    assert following.data_interval.end - following.data_interval.start == timedelta(hours=1)
    assert dagbag.dags["ditio_images"].catchup is False


def test_tasks_are_list_then_mapped_download_then_publish(dagbag):
    dag = dagbag.dags["ditio_images"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "list_images",
        "download_images",
        "publish_manifest",
    ]
    assert dag.get_task("publish_manifest").trigger_rule == "none_failed"
    assert dag.default_args["retries"] >= 1
    assert dag.default_args["retry_exponential_backoff"]


def test_params_form_the_trigger_form(dagbag):
    params = dagbag.dags["ditio_images"].params
    for name in [
        "project_id",
        "company_id",
        "sources",
        "require_geo",
        "own_company_only",
        "exclude_subsidiaries",
        "chunk_limit",
        "variants",
        "bucket",
        "prefix",
    ]:
        param = params.get_param(name)
        assert param.schema.get("title") and param.description, name
    assert params["sources"] == ["feed", "alert", "checklist"]
    assert params["chunk_limit"] == 2500 and params["variants"] == ["original"]


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_files_do_no_io_at_parse_time(path):
    tree = ast.parse(path.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert not imported & {"requests", "boto3", "botocore", "urllib3"}
    source = path.read_text()
    assert "Variable.get" not in source and "get_connection" not in source
