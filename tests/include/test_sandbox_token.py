from __future__ import annotations

import pytest
import requests

from ditio_sandbox import Sandbox, Tenant

TIMEOUT = 10


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_issues_a_bearer_token(api) -> None:
    response = api.fetch_token()
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
    assert len(body["access_token"]) >= 32
    assert response.headers["Cache-Control"] == "no-store"


def test_tokens_are_random_and_opaque(api) -> None:
    assert api.fetch_token().json()["access_token"] != api.fetch_token().json()["access_token"]


def test_accepts_client_credentials_in_basic_auth(sandbox: Sandbox) -> None:
    form = {"grant_type": "client_credentials", "scope": "reportingapiv1 ditioapiv3"}
    response = requests.post(
        sandbox.token_url, data=form, auth=("sandbox", "sandbox-secret"), timeout=TIMEOUT
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "ditioapiv3 reportingapiv1"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"scope": "ditioapiv3"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"scope": "reportingapiv1 admin"}, "invalid_scope"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": ""}, "invalid_request"),
    ],
)
def test_rejects_bad_token_requests(api, overrides: dict[str, str], error: str) -> None:
    response = api.fetch_token(**overrides)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_rejects_a_json_token_request(sandbox: Sandbox) -> None:
    form = {"grant_type": "client_credentials", "client_id": "sandbox"}
    response = requests.post(sandbox.token_url, json=form, timeout=TIMEOUT)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_token_endpoint_wants_post(sandbox: Sandbox) -> None:
    assert requests.get(sandbox.token_url, timeout=TIMEOUT).status_code == 405


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Basic c2FuZGJveDpzYW5kYm94LXNlY3JldA=="],
)
def test_api_wants_a_valid_bearer_token(sandbox: Sandbox, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for url in (f"{sandbox.base_url}/v1/images", f"{sandbox.tenant.rows()[0]['downloadUrl']}"):
        response = requests.get(url, headers=headers, timeout=TIMEOUT)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_tokens_expire_on_the_sandbox_clock(make_api) -> None:
    clock = FakeClock()
    with Sandbox(Tenant(hours=1, parents_per_hour=2), token_lifetime=60, clock=clock) as sandbox:
        api = make_api(sandbox)
        assert api.fetch_token().json()["expires_in"] == 60
        assert api.page({}).status_code == 200
        clock.now += 61
        expired = api.page({})
        assert expired.status_code == 401
        assert "expired" in expired.headers["WWW-Authenticate"]
        api.login()
        assert api.page({}).status_code == 200


def test_expire_tokens_rejects_existing_tokens_only(api) -> None:
    assert api.page({}).status_code == 200
    api.sandbox.expire_tokens()
    assert api.page({}).status_code == 401
    api.login()
    assert api.page({}).status_code == 200


def test_a_revoked_client_gets_401_even_with_fresh_tokens(api) -> None:
    api.login()
    api.sandbox.revoke_client()
    assert api.page({}).status_code == 401
    api.login()
    assert api.page({}).status_code == 401
    api.sandbox.restore_client()
    assert api.page({}).status_code == 200


def test_file_scope_can_be_required(make_api) -> None:
    with Sandbox(Tenant(hours=1, parents_per_hour=2), file_scope="ditioapiv3") as sandbox:
        api = make_api(sandbox)
        url = sandbox.tenant.rows()[0]["downloadUrl"]
        assert api.get(url).status_code == 403
        api.token = api.fetch_token(scope="reportingapiv1 ditioapiv3").json()["access_token"]
        assert api.get(url).status_code == 200


def test_sandbox_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Sandbox(Tenant(hours=1, parents_per_hour=1), host="0.0.0.0")
