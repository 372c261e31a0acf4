"""docker-compose.yaml cannot be run here; check what it promises by reading it."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from helpers import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]


def pinned(package: str) -> str:
    text = (ROOT / "requirements.txt").read_text()
    return re.search(rf"^{package}==(\S+)$", text, re.MULTILINE).group(1)


def test_runs_every_airflow_process_minio_postgres_and_the_sandbox():
    assert set(AIRFLOW) | {"postgres", "minio", "minio-init", "airflow-init", "sandbox"} <= set(
        SERVICES
    )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_published_ports_bind_loopback_only(name):
    for port in SERVICES[name].get("ports", []):
        assert str(port).startswith("127.0.0.1:"), (name, port)


@pytest.mark.parametrize("name", ["airflow-scheduler", "airflow-triggerer"])
def test_log_servers_are_switched_off(name):
    assert "--skip-serve-logs" in SERVICES[name]["command"]


@pytest.mark.parametrize("name", AIRFLOW)
def test_airflow_sees_only_the_dags_and_plugins_folders(name):
    service = SERVICES[name]
    env = service["environment"]
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/dags"
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/airflow/plugins"
    assert "./dags:/opt/airflow/dags:ro" in service["volumes"]
    assert "./plugins:/opt/airflow/plugins:ro" in service["volumes"]
    assert "PYTHONPATH" not in env


def test_image_matches_the_pinned_airflow():
    dockerfile = SERVICES["airflow-scheduler"]["build"]["dockerfile_inline"]
    assert f"apache/airflow:{pinned('apache-airflow')}-python3.11" in dockerfile
    assert "requirements.txt" in dockerfile


def test_connections_are_json_and_point_at_minio_and_the_sandbox():
    env = SERVICES["airflow-scheduler"]["environment"]
    ditio = json.loads(env["AIRFLOW_CONN_DITIO_DEFAULT"])
    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert ditio["conn_type"] == "http" and aws["conn_type"] == "aws"
    assert aws["extra"]["endpoint_url"] == "http://minio:9000"
    assert aws["login"] == SERVICES["minio"]["environment"]["MINIO_ROOT_USER"]
    sandbox_port = SERVICES["sandbox"]["command"][
        SERVICES["sandbox"]["command"].index("--port") + 1
    ]
    assert ditio["host"] == f"http://127.0.0.1:{sandbox_port}/reporting"
    assert ditio["extra"]["token_url"].startswith(f"http://127.0.0.1:{sandbox_port}/")


def test_the_sandbox_listens_on_the_schedulers_loopback():
    sandbox = SERVICES["sandbox"]
    assert sandbox["network_mode"] == "service:airflow-scheduler"
    assert sandbox["command"][sandbox["command"].index("--host") + 1] == "127.0.0.1"


def test_the_bucket_the_dag_uses_is_created():
    bucket = SERVICES["airflow-scheduler"]["environment"]["AIRFLOW_VAR_DITIO_IMAGES_BUCKET"]
    assert f"local/{bucket}" in SERVICES["minio-init"]["entrypoint"]


def test_every_airflow_process_shares_the_jwt_secret_and_the_logs():
    secrets = {SERVICES[name]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] for name in AIRFLOW}
    assert len(secrets) == 1 and secrets != {""}
    for name in AIRFLOW:
        assert "airflow-logs:/opt/airflow/logs" in SERVICES[name]["volumes"]
