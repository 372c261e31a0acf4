"""The running stack a DAG test uses: the sandbox, a bucket, and fresh ``dag.test()`` runs."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from helpers import HOUR, SAMPLE_PHOTOS, START, bucket_objects, read_jsonl

FAST_RETRIES = {
    "max_attempts": 3,
    "backoff_base": 0.01,
    "backoff_max": 0.05,
    "retry_after_max": 0.5,
    "jitter": 0,
    "connect_timeout": 2,
    "read_timeout": 5,
}


DEFAULT_PARAMS: dict[str, Any] = {}


@dataclass
class Stack:
    """The sandbox, the bucket and the environment the DAG sees."""

    sandbox: Any
    s3: Any
    bucket: str
    dag: Any
    monkeypatch: Any
    extra: dict[str, Any] = field(default_factory=dict)

    def configure(self, **extra: Any) -> None:
        """(Re)write the ``ditio_default`` connection with these extras."""
        self.extra.update(extra)
        conn = {
            "conn_type": "http",
            "host": self.sandbox.base_url,
            "login": self.sandbox.info()["client_id"],
            "password": self.sandbox.info()["client_secret"],
            "extra": {"token_url": self.sandbox.token_url, **FAST_RETRIES, **self.extra},
        }
        self.monkeypatch.setenv("AIRFLOW_CONN_DITIO_DEFAULT", json.dumps(conn))

    def run(self, start: datetime = START, **conf: Any) -> Any:
        """Run the DAG for the hour starting at ``start``; return the DagRun.

        ``dag.test()`` would pick up an earlier run of the same logical date with its conf, so
        earlier runs of this DAG are deleted first, and since it also writes the conf into the
        DAG's params, each run gets its own copy of the DAG: every call is a fresh run.
        """
        forget_runs(self.dag.dag_id)
        full_conf = {**DEFAULT_PARAMS, **conf}
        return copy.deepcopy(self.dag).test(logical_date=start + HOUR, run_conf=full_conf)

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        return bucket_objects(self.s3, self.bucket, prefix)

    def manifest(self, start: datetime = START, prefix: str = "") -> list[dict[str, Any]]:
        key = f"{prefix}manifests/dt={start:%Y-%m-%d}/hour={start:%H}/images.jsonl"
        body = self.objects(key)[key]
        return read_jsonl(body)

    def task_states(self, dagrun: Any) -> dict[str, list[str]]:
        states: dict[str, list[str]] = {}
        for ti in dagrun.get_task_instances():
            states.setdefault(ti.task_id, []).append(str(ti.state))
        return states


def forget_runs(dag_id: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        for model in (XComModel, TaskInstance, DagRun):
            session.execute(delete(model).where(model.dag_id == dag_id))


def make_stack(
    request,
    monkeypatch,
    dag,
    s3_client,
    bucket,
    *,
    sandbox_options: dict[str, Any] | None = None,
    **tenant_options: Any,
) -> Stack:
    """A running stack; ``tenant_options`` go to ``Tenant``, ``sandbox_options`` to ``Sandbox``."""
    from ditio_sandbox import Sandbox, Tenant

    options = {"seed": 7, "start": START, "hours": 3, "photos_dir": SAMPLE_PHOTOS}
    options.update(tenant_options)
    sandbox = Sandbox(tenant=Tenant(**options), **(sandbox_options or {})).start()
    request.addfinalizer(sandbox.stop)
    local_s3 = request.getfixturevalue("local_s3")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", local_s3.connection_json())
    monkeypatch.setenv("AIRFLOW_VAR_DITIO_IMAGES_BUCKET", bucket)
    stack = Stack(sandbox=sandbox, s3=s3_client, bucket=bucket, dag=dag, monkeypatch=monkeypatch)
    stack.configure()
    return stack
