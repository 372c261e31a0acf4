from __future__ import annotations

import pytest

from ditio_images.exceptions import DitioConfigError
from ditio_images.settings import DitioSettings, base_url_from, token_url_for


def settings(host="https://core-api.ditio.app/reporting", extra=None, **fields):
    values = {"login": "client", "password": "secret", "extra": extra or {}, **fields}
    return DitioSettings.from_connection(host=host, **values)


@pytest.mark.parametrize(
    ("host", "schema", "expected"),
    [
        ("https://core-api.ditio.app/reporting", None, "https://core-api.ditio.app/reporting"),
        ("core-api.ditio.dev/reporting/", None, "https://core-api.ditio.dev/reporting"),
        ("core-api.ditio.app", None, "https://core-api.ditio.app/reporting"),
        ("127.0.0.1:8099/reporting", "http", "http://127.0.0.1:8099/reporting"),
        ("http://localhost:1/reporting", None, "http://localhost:1/reporting"),
    ],
)
def test_builds_the_base_url_from_host_schema_and_path(host, schema, expected):
    assert base_url_from(host, schema) == expected


def test_refuses_plain_http_to_a_remote_host():
    with pytest.raises(DitioConfigError, match="https"):
        base_url_from("http://core-api.ditio.app/reporting")


def test_production_and_test_hosts_get_their_identity_server():
    assert settings().token_url == "https://identity.ditio.app/connect/token"
    test_env = settings("https://core-api.ditio.dev/reporting")
    assert test_env.token_url == "https://identity.ditio.dev/connect/token"
    assert settings().scope == "reportingapiv1"


def test_any_other_host_needs_an_explicit_token_url():
    with pytest.raises(DitioConfigError, match="token_url"):
        settings("http://127.0.0.1:9/reporting")
    custom = settings(
        "http://127.0.0.1:9/reporting",
        extra={"token_url": "http://127.0.0.1:9/connect/token", "scope": "a b"},
    )
    assert custom.token_url == "http://127.0.0.1:9/connect/token" and custom.scope == "a b"


def test_token_url_must_be_https_unless_loopback():
    with pytest.raises(DitioConfigError, match="https"):
        token_url_for("https://x.example/reporting", "http://evil.example/token")


def test_missing_credentials_name_the_field():
    with pytest.raises(DitioConfigError, match="client id"):
        settings(login="")


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        ({"trusted_hosts": 5}, "trusted_hosts"),
        ({"untrusted_downloads": "always"}, "untrusted_downloads"),
        ({"max_file_bytes": -1}, "max_file_bytes"),
        ({"max_file_bytes": "lots"}, "max_file_bytes"),
        ({"token_refresh_margin": "soon"}, "token_refresh_margin"),
    ],
)
def test_bad_extras_name_the_key(extra, name):
    with pytest.raises(DitioConfigError, match=name):
        settings(extra=extra)


def test_reads_trusted_hosts_and_limits_from_extras():
    parsed = settings(
        extra={"trusted_hosts": "a.example, B.example", "max_file_bytes": "1000", "max_attempts": 2}
    )
    assert parsed.trusted_hosts == ("a.example", "b.example")
    assert parsed.max_file_bytes == 1000
    assert parsed.policy.max_attempts == 2
