"""DitioHook: an Airflow connection in, a configured client out."""

from __future__ import annotations

import json

import pytest
from helpers import START

from ditio_images.exceptions import DitioConfigError
from ditio_images.hooks import DitioHook


def set_connection(monkeypatch, **fields):
    monkeypatch.setenv("AIRFLOW_CONN_DITIO_DEFAULT", json.dumps({"conn_type": "http", **fields}))


def test_a_missing_connection_names_itself_and_the_fix(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_DITIO_DEFAULT", raising=False)
    with pytest.raises(DitioConfigError, match="'ditio_default' is not defined"):
        DitioHook().get_conn()


def test_reads_a_json_environment_connection_for_production(monkeypatch):
    set_connection(
        monkeypatch,
        host="https://core-api.ditio.app/reporting",
        login="client",
        password="secret",
        extra={"trusted_hosts": ["blob.example"], "max_attempts": 2},
    )
    client = DitioHook().get_conn()
    assert client.base_url == "https://core-api.ditio.app/reporting"
    assert client.tokens.token_url == "https://identity.ditio.app/connect/token"
    assert "blob.example" in client.trusted_hosts
    assert client.policy.max_attempts == 2


@pytest.fixture
def sandbox():
    from ditio_sandbox import Sandbox, Tenant

    with Sandbox(tenant=Tenant(seed=2, start=START, hours=1, parents_per_hour=1)) as server:
        yield server


def test_test_connection_fetches_a_token(monkeypatch, sandbox):
    info = sandbox.info()
    set_connection(
        monkeypatch,
        host=sandbox.base_url,
        login=info["client_id"],
        password=info["client_secret"],
        extra={"token_url": sandbox.token_url},
    )
    ok, message = DitioHook().test_connection()
    assert ok and sandbox.base_url in message


def test_a_wrong_secret_fails_the_test_without_showing_it(monkeypatch, sandbox):
    set_connection(
        monkeypatch,
        host=sandbox.base_url,
        login="sandbox",
        password="not-the-secret-123",
        extra={"token_url": sandbox.token_url, "max_attempts": 1},
    )
    ok, message = DitioHook().test_connection()
    assert not ok and "invalid_client" in message
    assert "not-the-secret-123" not in message
