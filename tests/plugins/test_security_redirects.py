"""Where the bearer token goes once a file request is redirected."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fake_http import FakeServer, Reply, Seen

from ditio_images.client import DitioClient
from ditio_images.exceptions import DitioForbidden
from ditio_images.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=1, jitter=0, connect_timeout=2, read_timeout=5)
FILE = "/core/api/file/f1"
BLOB = "/blob/f1"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
TOKEN = "tok-3f9a1c5e7d"


class OneToken:
    def token(self) -> str:
        return TOKEN

    def refresh(self, stale: str) -> str:
        return TOKEN


def image(seen: Seen, _handler: Any) -> Reply:
    return Reply(200, JPEG, {"Content-Type": "image/jpeg"})


def needs_token(seen: Seen, handler: Any) -> Reply:
    if seen.authorization != f"Bearer {TOKEN}":
        return Reply(401, b"", {"WWW-Authenticate": "Bearer"})
    return image(seen, handler)


def refuses_token(seen: Seen, handler: Any) -> Reply:
    if seen.authorization is not None:
        return Reply(400, b"<Error><Code>InvalidAuthenticationInfo</Code></Error>")
    return image(seen, handler)


def redirect(location: str) -> Reply:
    return Reply(302, b"", {"Location": location})


@pytest.fixture
def fetch(api: FakeServer) -> Callable[[str], bytes]:
    def open_and_read(url: str) -> bytes:
        client = DitioClient(base_url=f"{api.url}/reporting", tokens=OneToken(), policy=FAST)
        with client.open_file(url) as stream:
            return b"".join(stream.iter_chunks(1024))

    return open_and_read


def test_same_host_blob_redirect_is_fetched_without_the_token(
    api: FakeServer, fetch: Callable[[str], bytes]
) -> None:
    api.route("GET", FILE, redirect(f"{BLOB}?sig=abc&exp=1"))
    api.route("GET", BLOB, refuses_token)

    assert fetch(f"{api.url}{FILE}") == JPEG

    assert [seen.authorization for seen in api.seen] == [f"Bearer {TOKEN}", None]


def test_same_host_redirect_gets_the_token_when_it_asks_with_401(
    api: FakeServer, fetch: Callable[[str], bytes]
) -> None:
    api.route("GET", FILE, redirect("/core/api/file/f2"))
    api.route("GET", "/core/api/file/f2", needs_token)

    assert fetch(f"{api.url}{FILE}") == JPEG

    assert [seen.authorization for seen in api.seen] == [f"Bearer {TOKEN}", None, f"Bearer {TOKEN}"]


def test_foreign_redirect_target_asking_for_a_token_does_not_get_it(
    api: FakeServer, foreign: FakeServer, fetch: Callable[[str], bytes]
) -> None:
    api.route("GET", FILE, redirect(f"{foreign.url}{BLOB}"))
    foreign.route("GET", BLOB, needs_token)

    with pytest.raises(DitioForbidden, match="untrusted host"):
        fetch(f"{api.url}{FILE}")

    assert [seen.authorization for seen in foreign.seen] == [None]
