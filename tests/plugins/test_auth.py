from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from fake_http import FakeServer, Reply, Seen, token_route

from ditio_images.auth import TokenProvider
from ditio_images.exceptions import (
    DitioAuthError,
    DitioConfigError,
    DitioRetryableError,
    DitioServerError,
)
from ditio_images.retry import RetryPolicy

SECRET = "s3cr3t+/value"
FAST = RetryPolicy(max_attempts=3, backoff_base=0, jitter=0, connect_timeout=2, read_timeout=5)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def make(api: FakeServer, session: requests.Session) -> Callable[..., TokenProvider]:
    def build(**overrides: Any) -> TokenProvider:
        settings: dict[str, Any] = {
            "token_url": f"{api.url}/connect/token",
            "client_id": "client-1",
            "client_secret": SECRET,
            "session": session,
            "policy": FAST,
            "sleep": lambda _seconds: None,
            **overrides,
        }
        return TokenProvider(**settings)

    return build


def token_requests(api: FakeServer) -> list[Seen]:
    return api.requests_to("/connect/token")


def test_posts_client_credentials_form(api: FakeServer, make: Callable[..., TokenProvider]) -> None:
    token = make(scope="reportingapiv1 ditioapiv3").token()

    (seen,) = token_requests(api)
    assert token == "tok-1"
    assert seen.method == "POST"
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.form() == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-1"],
        "client_secret": [SECRET],
        "scope": ["reportingapiv1 ditioapiv3"],
    }
    assert seen.headers["user-agent"].startswith("ditio-images/")


def test_caches_the_token(api: FakeServer, make: Callable[..., TokenProvider]) -> None:
    tokens = make()

    assert [tokens.token() for _ in range(5)] == ["tok-1"] * 5
    assert tokens.fetch_count == 1
    assert len(token_requests(api)) == 1


def test_refreshes_a_margin_before_expiry(
    api: FakeServer, make: Callable[..., TokenProvider]
) -> None:
    api.route("POST", "/connect/token", token_route(expires_in=600))
    clock = Clock()
    tokens = make(clock=clock, refresh_margin=60)
    assert tokens.token() == "tok-1"

    clock.now += 539
    assert tokens.token() == "tok-1"

    clock.now += 1
    assert tokens.token() == "tok-2"
    assert tokens.fetch_count == 2


def test_margin_is_capped_at_half_a_short_lifetime(
    api: FakeServer, make: Callable[..., TokenProvider]
) -> None:
    api.route("POST", "/connect/token", token_route(expires_in=60))
    clock = Clock()
    tokens = make(clock=clock, refresh_margin=300)
    tokens.token()

    clock.now += 29.9
    assert tokens.token() == "tok-1"

    clock.now += 0.1
    assert tokens.token() == "tok-2"


@pytest.mark.parametrize("expires_in", [None, "soon", 0, -5])
def test_unusable_lifetime_falls_back_to_30_minutes(
    api: FakeServer, make: Callable[..., TokenProvider], expires_in: Any
) -> None:
    api.route("POST", "/connect/token", Reply.json({"access_token": "t", "expires_in": expires_in}))
    clock = Clock()
    tokens = make(clock=clock, refresh_margin=60)
    tokens.token()

    clock.now += 1739
    tokens.token()
    assert tokens.fetch_count == 1

    clock.now += 1
    tokens.token()
    assert tokens.fetch_count == 2


def test_many_threads_at_once_cause_one_token_request(
    api: FakeServer, make: Callable[..., TokenProvider]
) -> None:
    grant = token_route()

    def slow(seen: Seen, handler: Any) -> Reply | None:
        time.sleep(0.2)
        return grant(seen, handler)

    api.route("POST", "/connect/token", slow)
    tokens = make()
    results = run_together(20, tokens.token)

    assert results == ["tok-1"] * 20
    assert tokens.fetch_count == 1
    assert len(token_requests(api)) == 1


def test_refresh_replaces_the_stale_token_once(
    api: FakeServer, make: Callable[..., TokenProvider]
) -> None:
    tokens = make()
    stale = tokens.token()

    results = run_together(10, lambda: tokens.refresh(stale))

    assert results == ["tok-2"] * 10
    assert tokens.fetch_count == 2
    assert len(token_requests(api)) == 2


def test_refresh_with_an_older_token_returns_the_current_one(
    make: Callable[..., TokenProvider],
) -> None:
    tokens = make()
    tokens.token()
    tokens.refresh("tok-1")

    assert tokens.refresh("tok-1") == "tok-2"
    assert tokens.fetch_count == 2


def test_refresh_before_any_token_fetches_one(make: Callable[..., TokenProvider]) -> None:
    tokens = make()

    assert tokens.refresh("whatever") == "tok-1"


def test_on_token_sees_every_new_token(make: Callable[..., TokenProvider]) -> None:
    seen: list[str] = []
    tokens = make(on_token=seen.append)

    tokens.token()
    tokens.token()
    tokens.refresh("tok-1")

    assert seen == ["tok-1", "tok-2"]


def test_retries_server_errors_and_honours_retry_after(
    api: FakeServer, make: Callable[..., TokenProvider]
) -> None:
    api.replies(
        "POST",
        "/connect/token",
        Reply(503, b"busy"),
        Reply(429, b"", {"Retry-After": "4"}),
        Reply.json({"access_token": "fresh", "expires_in": 600}),
    )
    sleeps: list[float] = []
    tokens = make(sleep=sleeps.append)

    assert tokens.token() == "fresh"
    assert sleeps == [0.0, 4.0]
    assert len(token_requests(api)) == 3


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (400, "invalid_client", "client id and secret"),
        (400, "invalid_scope", "scope 'reportingapiv1'"),
        (401, "unauthorized_client", "client_credentials grant"),
        (401, "invalid_client", "belong to this environment"),
        (403, "", "client id and secret"),
    ],
)
def test_refused_credentials_are_fatal_and_explained(
    api: FakeServer, make: Callable[..., TokenProvider], status: int, code: str, hint: str
) -> None:
    payload = {"error": code, "error_description": f"client {SECRET} rejected"} if code else {}
    api.route("POST", "/connect/token", Reply.json(payload, status))

    with pytest.raises(DitioAuthError) as caught:
        make().token()

    message = str(caught.value)
    assert f"{status} {code}" in message
    assert f"{api.url}/connect/token" in message
    assert "'client-1'" in message
    assert hint in message
    assert SECRET not in message
    assert len(token_requests(api)) == 1


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}),
        Reply.json({"token_type": "Bearer", "expires_in": 60}),
        Reply.json({"access_token": "", "expires_in": 60}),
        Reply.json(["tok"]),
    ],
)
def test_answers_without_a_token_are_server_errors(
    api: FakeServer, make: Callable[..., TokenProvider], reply: Reply
) -> None:
    api.route("POST", "/connect/token", reply)

    with pytest.raises(DitioRetryableError) as caught:
        make().token()

    assert isinstance(caught.value.__cause__, DitioServerError)
    assert "access_token" in str(caught.value)
    assert len(token_requests(api)) == FAST.max_attempts


def test_wrong_token_url_is_a_config_error(
    api: FakeServer, make: Callable[..., TokenProvider]
) -> None:
    with pytest.raises(DitioConfigError, match="token_url") as caught:
        make(token_url=f"{api.url}/wrong/path").token()

    assert caught.value.field == "token_url"


def test_redirecting_token_url_is_not_followed(
    api: FakeServer, foreign: FakeServer, make: Callable[..., TokenProvider]
) -> None:
    api.route("POST", "/connect/token", Reply(307, b"", {"Location": f"{foreign.url}/steal"}))

    with pytest.raises(DitioConfigError, match="307"):
        make().token()

    assert foreign.seen == []


def test_unreachable_token_url_is_retried_then_handed_over(
    make: Callable[..., TokenProvider], closed_port: int
) -> None:
    sleeps: list[float] = []

    with pytest.raises(DitioRetryableError) as caught:
        make(token_url=f"http://127.0.0.1:{closed_port}/connect/token", sleep=sleeps.append).token()

    assert len(sleeps) == FAST.max_attempts - 1
    assert "Could not reach" in str(caught.value.__cause__)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("token_url", "http://identity.example.test/connect/token"),
        ("token_url", "ftp://127.0.0.1/connect/token"),
        ("token_url", "not a url"),
        ("token_url", ""),
        ("client_id", ""),
        ("client_secret", "  "),
        ("scope", ""),
        ("refresh_margin", -1),
    ],
)
def test_invalid_settings_name_the_field(
    make: Callable[..., TokenProvider], field: str, value: Any
) -> None:
    with pytest.raises(DitioConfigError) as caught:
        make(**{field: value})

    assert caught.value.field == field
    assert field in str(caught.value)


def test_secret_and_token_never_reach_logs_or_errors(
    api: FakeServer, make: Callable[..., TokenProvider], caplog: pytest.LogCaptureFixture
) -> None:
    api.replies(
        "POST",
        "/connect/token",
        Reply(500, f"echo {SECRET}".encode()),
        Reply.json({"access_token": "tok-secret-value", "expires_in": 600}),
        Reply.json({"error": "invalid_client", "error_description": SECRET}, 400),
    )
    tokens = make()

    with caplog.at_level(logging.DEBUG):
        tokens.token()
        with pytest.raises(DitioAuthError) as caught:
            tokens.refresh("tok-secret-value")

    text = chain_text(caught.value)
    logged = " ".join(record.getMessage() for record in caplog.records)
    for secret in (SECRET, "tok-secret-value"):
        assert secret not in text
        assert secret not in logged
    assert "Fetched an access token" in logged


def chain_text(error: BaseException | None) -> str:
    """The messages of ``error`` and everything it was chained from, as a traceback shows."""
    parts = []
    while error is not None:
        parts.extend(traceback.format_exception_only(error))
        error = error.__cause__ or error.__context__
    return "".join(parts)


def run_together(count: int, call: Callable[[], str]) -> list[str]:
    barrier = threading.Barrier(count)
    results: list[str] = [""] * count

    def worker(index: int) -> None:
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return results
