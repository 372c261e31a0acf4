"""Fixtures for the sandbox tests: a seeded tenant, a running sandbox and a small API client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from ditio_sandbox import Sandbox, Tenant

TIMEOUT = 10


class Api:
    """A thin requests client for the sandbox with a cached bearer token."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.token = ""

    def fetch_token(self, **overrides: str) -> requests.Response:
        form = {
            "grant_type": "client_credentials",
            "client_id": "sandbox",
            "client_secret": "sandbox-secret",
            "scope": "reportingapiv1",
            **overrides,
        }
        return self.session.post(self.sandbox.token_url, data=form, timeout=TIMEOUT)

    def login(self) -> str:
        response = self.fetch_token()
        response.raise_for_status()
        self.token = response.json()["access_token"]
        return self.token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token or self.login()}"}

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return self.session.get(url, headers=headers, **kwargs)

    def page(self, params: Any) -> requests.Response:
        return self.get(f"{self.sandbox.base_url}/v1/images", params=params)

    def pages(self, params: Any, limit: int = 1000) -> list[dict[str, Any]]:
        """Every page of a listing (params: a dict or (key, value) pairs), following tokens."""
        base = list(params.items()) if isinstance(params, dict) else list(params)
        query = base
        pages = []
        for _ in range(limit):
            response = self.page(query)
            assert response.status_code == 200, response.text
            pages.append(response.json())
            token = pages[-1].get("continuationToken")
            if not token:
                return pages
            query = [*base, ("ContinuationToken", token)]
        raise AssertionError(f"paging did not finish within {limit} pages")

    def rows(self, params: Any) -> list[Any]:
        return [row for page in self.pages(params) for row in page["data"]]


@pytest.fixture(scope="session")
def tenant() -> Tenant:
    return Tenant(seed=7)


@pytest.fixture
def sandbox(tenant: Tenant) -> Iterator[Sandbox]:
    with Sandbox(tenant) as running:
        yield running


@pytest.fixture
def make_api() -> Iterator[Callable[[Sandbox], Api]]:
    """Build API clients for sandboxes a test starts itself."""
    clients: list[Api] = []

    def build(sandbox: Sandbox) -> Api:
        clients.append(Api(sandbox))
        return clients[-1]

    yield build
    for client in clients:
        client.session.close()


@pytest.fixture
def api(sandbox: Sandbox, make_api: Callable[[Sandbox], Api]) -> Api:
    return make_api(sandbox)


def row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["id"], row["collectionRef"], row["idRef"]
