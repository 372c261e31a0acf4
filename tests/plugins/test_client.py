from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests
import responses
from fake_http import FakeServer, Reply, Seen, write_raw

from ditio_images.auth import TokenProvider
from ditio_images.client import DitioClient, build_session, encode_params
from ditio_images.exceptions import (
    DitioAuthError,
    DitioBadRequest,
    DitioConfigError,
    DitioConnectionError,
    DitioForbidden,
    DitioIncompleteBody,
    DitioNotFound,
    DitioRefused,
    DitioResponseTooLarge,
    DitioRetriesExhausted,
    DitioRetryableError,
    DitioServerError,
)
from ditio_images.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=3, backoff_base=1.0, jitter=0, connect_timeout=2, read_timeout=5)
IMAGES = "/reporting/v1/images"
FILE = "/core/api/file/f1"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
SIG = "S1GNATURE-s3cr3t"


def page(rows: list[dict[str, Any]] | None = None, token: str | None = None) -> Reply:
    rows = rows if rows is not None else [{"id": "f1"}]
    return Reply.json({"data": rows, "continuationToken": token, "recordCount": len(rows)})


def image(body: bytes = JPEG, content_type: str = "image/jpeg") -> Reply:
    return Reply(200, body, {"Content-Type": content_type, "Cache-Control": "max-age=1209600"})


def needs_token(reply: Reply, token: str = "tok-1") -> Callable[[Seen, Any], Reply]:
    def answer(seen: Seen, _handler: Any) -> Reply:
        if seen.authorization != f"Bearer {token}":
            return Reply.json({"error": "Unauthorized"}, 401)
        return reply

    return answer


def refuses_token(reply: Reply) -> Callable[[Seen, Any], Reply]:
    """A blob host that rejects any request carrying an Authorization header."""

    def answer(seen: Seen, _handler: Any) -> Reply:
        if seen.authorization is not None:
            return Reply(400, b"<Error>Authorization header not allowed</Error>")
        return reply

    return answer


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, b"", {"Location": location})


def read_all(stream: Any) -> bytes:
    return b"".join(stream.iter_chunks(1000))


def chain_text(error: BaseException | None) -> str:
    parts = []
    while error is not None:
        parts.extend(traceback.format_exception_only(error))
        error = error.__cause__ or error.__context__
    return "".join(parts)


class StaticTokens:
    """Hands out ``tok-1``; a refresh moves on to the next number."""

    def __init__(self) -> None:
        self.number = 1

    def token(self) -> str:
        return f"tok-{self.number}"

    def refresh(self, stale: str) -> str:
        if stale == self.token():
            self.number += 1
        return self.token()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def tokens(api: FakeServer, session: requests.Session) -> TokenProvider:
    return TokenProvider(
        token_url=f"{api.url}/connect/token",
        client_id="client-1",
        client_secret="client-s3cr3t",
        session=session,
        policy=FAST,
        sleep=lambda _seconds: None,
    )


@pytest.fixture
def make(
    api: FakeServer, tokens: TokenProvider, session: requests.Session, sleeps: list[float]
) -> Callable[..., DitioClient]:
    def build(**overrides: Any) -> DitioClient:
        settings: dict[str, Any] = {
            "base_url": f"{api.url}/reporting/",
            "tokens": tokens,
            "session": session,
            "policy": FAST,
            "sleep": sleeps.append,
            **overrides,
        }
        return DitioClient(**settings)

    return build


class TestSettings:
    def test_base_url_loses_its_trailing_slash(self, make: Callable[..., DitioClient]) -> None:
        assert not make().base_url.endswith("/")
        assert make().base_url.endswith("/reporting")

    def test_trusts_the_base_host_with_its_port(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        assert make().trusted_hosts == frozenset({api.netloc})

    @pytest.mark.parametrize(
        ("base_url", "expected"),
        [
            ("https://core-api.ditio.app/reporting", {"core-api.ditio.app"}),
            ("https://Core-API.ditio.dev:443/reporting", {"core-api.ditio.dev"}),
            ("https://reporting.ditio.dev/api", {"reporting.ditio.dev", "core-api.ditio.dev"}),
            ("https://api.example.test:8443/reporting", {"api.example.test:8443"}),
            ("http://localhost:8080/reporting", {"localhost:8080"}),
            ("http://[::1]:8080/reporting", {"[::1]:8080"}),
        ],
    )
    def test_default_trusted_hosts(self, base_url: str, expected: set[str]) -> None:
        client = DitioClient(base_url=base_url, tokens=StaticTokens())  # type: ignore[arg-type]

        assert client.trusted_hosts == frozenset(expected)

    def test_extra_trusted_hosts_are_normalised(self) -> None:
        client = DitioClient(
            base_url="https://api.example.test/reporting",
            tokens=StaticTokens(),  # type: ignore[arg-type]
            trusted_hosts=["Files.Example.Test", "https://cdn.example.test:443/x", "127.0.0.1:9"],
        )

        assert client.trusted_hosts == {
            "api.example.test",
            "files.example.test",
            "cdn.example.test",
            "127.0.0.1:9",
        }

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"base_url": "http://api.example.test/reporting"}, "base_url"),
            ({"base_url": "ftp://127.0.0.1/reporting"}, "base_url"),
            ({"base_url": "https://user:pw@api.example.test/reporting"}, "base_url"),
            ({"base_url": "https://api.example.test/reporting?x=1"}, "base_url"),
            ({"base_url": "https://api.example.test:99999/reporting"}, "base_url"),
            ({"base_url": ""}, "base_url"),
            ({"trusted_hosts": ["https://"]}, "trusted_hosts"),
            ({"untrusted": "allow"}, "untrusted"),
            ({"max_redirects": -1}, "max_redirects"),
            ({"max_file_bytes": 0}, "max_file_bytes"),
            ({"pool_size": 0}, "pool_size"),
        ],
    )
    def test_invalid_settings_name_the_field(
        self, make: Callable[..., DitioClient], overrides: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(DitioConfigError) as caught:
            make(**overrides)

        assert caught.value.field == field
        assert field in str(caught.value)

    def test_session_pools_connections_without_transport_retries(self) -> None:
        session = requests.Session()
        DitioClient(
            base_url="https://api.example.test/reporting",
            tokens=StaticTokens(),  # type: ignore[arg-type]
            session=session,
            pool_size=7,
        )

        adapter = session.get_adapter("https://files.example.test/x")
        assert adapter.max_retries.total == 0  # type: ignore[attr-defined]
        assert adapter._pool_connections == 7  # type: ignore[attr-defined]
        assert adapter._pool_maxsize == 7  # type: ignore[attr-defined]

    def test_built_session_announces_itself(self) -> None:
        assert build_session().headers["User-Agent"].startswith("ditio-images/")


class TestEncodeParams:
    def test_lists_repeat_booleans_are_lowercase_and_none_is_dropped(self) -> None:
        params = {
            "ProjectId": "65a",
            "Sources": ["feed", "alert"],
            "RequireGeoCoordinate": True,
            "OwnCompanyDataOnly": False,
            "CompanyId": None,
            "ModifiedSince": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
            "FromDateTime": date(2025, 1, 1),
            "ChunkLimit": 2500,
            "Empty": [],
            "Set": {"b", "a"},
        }

        assert encode_params(params) == [
            ("ProjectId", "65a"),
            ("Sources", "feed"),
            ("Sources", "alert"),
            ("RequireGeoCoordinate", "true"),
            ("OwnCompanyDataOnly", "false"),
            ("ModifiedSince", "2025-01-02T03:04:05+00:00"),
            ("FromDateTime", "2025-01-01"),
            ("ChunkLimit", "2500"),
            ("Set", "a"),
            ("Set", "b"),
        ]


class TestListImages:
    def test_sends_encoded_params_with_bearer_token(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        api.route("GET", IMAGES, page([{"id": "a"}], token="next+/="))
        params = {
            "ProjectId": "65a",
            "Sources": ["feed", "checklist"],
            "RequireGeoCoordinate": False,
            "CompanyId": None,
            "ContinuationToken": "abc+/=",
        }

        envelope = make().list_images(params)

        assert envelope["data"] == [{"id": "a"}]
        assert envelope["continuationToken"] == "next+/="
        (seen,) = api.requests_to(IMAGES)
        assert seen.query == [
            ("ProjectId", "65a"),
            ("Sources", "feed"),
            ("Sources", "checklist"),
            ("RequireGeoCoordinate", "false"),
            ("ContinuationToken", "abc+/="),
        ]
        assert seen.authorization == "Bearer tok-1"
        assert seen.headers["user-agent"].startswith("ditio-images/")

    def test_reuses_the_cached_token(
        self, api: FakeServer, make: Callable[..., DitioClient], tokens: TokenProvider
    ) -> None:
        api.route("GET", IMAGES, page())
        client = make()

        client.list_images({})
        client.list_images({})

        assert tokens.fetch_count == 1

    def test_refreshes_token_once_on_401_and_replays(
        self, api: FakeServer, make: Callable[..., DitioClient], tokens: TokenProvider
    ) -> None:
        api.route("GET", IMAGES, needs_token(page(), token="tok-2"))

        envelope = make().list_images({"ProjectId": "p"})

        assert envelope["data"] == [{"id": "f1"}]
        assert [s.authorization for s in api.requests_to(IMAGES)] == [
            "Bearer tok-1",
            "Bearer tok-2",
        ]
        assert tokens.fetch_count == 2

    def test_second_401_after_refresh_is_fatal(
        self, api: FakeServer, make: Callable[..., DitioClient], sleeps: list[float]
    ) -> None:
        api.route("GET", IMAGES, Reply.json({"error": "Unauthorized"}, 401))

        with pytest.raises(DitioAuthError, match="disabled or lacks the scope"):
            make().list_images({})

        assert len(api.requests_to(IMAGES)) == 2
        assert sleeps == []

    def test_403_names_the_filter(self, api: FakeServer, make: Callable[..., DitioClient]) -> None:
        api.route("GET", IMAGES, Reply.json({"error": "Forbidden"}, 403))

        with pytest.raises(DitioForbidden) as caught:
            make().list_images({"ProjectId": "65a"}, context="ProjectId=65a,CompanyId=7")

        assert "ProjectId=65a,CompanyId=7" in str(caught.value)
        assert len(api.requests_to(IMAGES)) == 1

    def test_400_carries_the_error_detail(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        body = {"error": "ArgumentIsNull", "message": "ModifiedSince is required"}
        api.route("GET", IMAGES, Reply.json(body, 400))

        with pytest.raises(DitioBadRequest) as caught:
            make().list_images({"ModifiedBefore": "2025-01-01T00:00:00Z"})

        error = caught.value
        assert (error.status, error.detail) == (400, "ArgumentIsNull: ModifiedSince is required")
        assert "/reporting/v1/images" in error.url
        assert len(api.requests_to(IMAGES)) == 1

    def test_huge_error_bodies_are_truncated(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        api.route("GET", IMAGES, Reply(409, b"x" * 1_000_000))

        with pytest.raises(DitioBadRequest) as caught:
            make().list_images({})

        assert caught.value.status == 409
        assert len(caught.value.detail) <= 300

    @pytest.mark.parametrize(
        "reply",
        [
            Reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}),
            Reply.json([{"id": "a"}]),
            Reply.json({"rows": []}),
            Reply.json({"data": {"id": "a"}}),
            Reply.json({"data": [], "continuationToken": 5}),
        ],
    )
    def test_body_that_is_not_the_envelope_is_a_server_error(
        self, api: FakeServer, make: Callable[..., DitioClient], reply: Reply
    ) -> None:
        api.route("GET", IMAGES, reply)

        with pytest.raises(DitioRetryableError) as caught:
            make().list_images({})

        assert isinstance(caught.value.__cause__, DitioServerError)
        assert "not the documented envelope" in str(caught.value)
        assert len(api.requests_to(IMAGES)) == FAST.max_attempts

    def test_429_retry_after_is_honoured(
        self, api: FakeServer, make: Callable[..., DitioClient], sleeps: list[float]
    ) -> None:
        api.replies("GET", IMAGES, Reply(429, b"slow down", {"Retry-After": "7"}), page())

        envelope = make().list_images({})

        assert envelope["data"] == [{"id": "f1"}]
        assert sleeps == [7.0]

    def test_server_errors_back_off_then_succeed(
        self, api: FakeServer, make: Callable[..., DitioClient], sleeps: list[float]
    ) -> None:
        api.replies("GET", IMAGES, Reply(500), Reply(503), page())

        make().list_images({})

        assert sleeps == [1.0, 2.0]
        assert len(api.requests_to(IMAGES)) == 3

    def test_persistent_server_errors_hand_over_to_airflow(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        api.route("GET", IMAGES, Reply(502, b"bad gateway"))

        with pytest.raises(DitioRetryableError, match="Airflow's task retries take over"):
            make().list_images({})

    def test_token_outage_is_retried_by_the_token_policy_only(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        api.route("POST", "/connect/token", Reply(503, b"identity down"))

        with pytest.raises(DitioRetriesExhausted, match="connect/token failed 3 times"):
            make().list_images({})

        assert len(api.requests_to("/connect/token")) == FAST.max_attempts
        assert api.requests_to(IMAGES) == []

    def test_unreachable_api_is_a_connection_error(
        self, make: Callable[..., DitioClient], tokens: TokenProvider, closed_port: int
    ) -> None:
        tokens.token()
        client = make(base_url=f"http://127.0.0.1:{closed_port}/reporting")

        with pytest.raises(DitioRetryableError) as caught:
            client.list_images({})

        assert isinstance(caught.value.__cause__, DitioConnectionError)

    def test_slow_api_times_out(self, api: FakeServer, make: Callable[..., DitioClient]) -> None:
        def slow(_seen: Seen, _handler: Any) -> Reply:
            time.sleep(0.5)
            return page()

        api.route("GET", IMAGES, slow)
        policy = RetryPolicy(max_attempts=1, read_timeout=0.1)

        with pytest.raises(DitioRetryableError) as caught:
            make(policy=policy).list_images({})

        assert isinstance(caught.value.__cause__, DitioConnectionError)

    @pytest.mark.parametrize("status", [301, 404])
    def test_wrong_base_url_is_a_config_error(
        self, api: FakeServer, make: Callable[..., DitioClient], status: int
    ) -> None:
        api.route("GET", IMAGES, Reply(status, b"", {"Location": "/elsewhere"}))

        with pytest.raises(DitioConfigError, match="base_url") as caught:
            make().list_images({})

        assert caught.value.field == "base_url"


class TestOpenFile:
    def test_streams_a_file_from_a_trusted_host_with_the_token(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        api.route("GET", FILE, needs_token(image(content_type="Image/JPEG; charset=binary")))

        with make().open_file(f"{api.url}{FILE}?MaxDimension=640") as stream:
            body = read_all(stream)
            assert stream.bytes_read == len(JPEG)

        assert body == JPEG
        assert stream.status == 200
        assert stream.content_type == "image/jpeg"
        assert stream.content_length == len(JPEG)
        assert stream.url == f"{api.url}{FILE}?MaxDimension=640"
        (seen,) = api.requests_to(FILE)
        assert seen.headers["accept-encoding"] == "identity"

    def test_missing_content_type_means_octet_stream(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        api.route("GET", FILE, Reply(200, b"abc"))

        with make().open_file(f"{api.url}{FILE}") as stream:
            assert stream.content_type == "application/octet-stream"

    def test_refreshes_token_once_on_401(
        self, api: FakeServer, make: Callable[..., DitioClient], tokens: TokenProvider
    ) -> None:
        api.route("GET", FILE, needs_token(image(), token="tok-2"))

        with make().open_file(f"{api.url}{FILE}") as stream:
            assert read_all(stream) == JPEG

        assert tokens.fetch_count == 2

    def test_second_401_is_fatal(self, api: FakeServer, make: Callable[..., DitioClient]) -> None:
        api.route("GET", FILE, Reply(401))

        with pytest.raises(DitioAuthError), make().open_file(f"{api.url}{FILE}"):
            pass

        assert len(api.requests_to(FILE)) == 2

    @pytest.mark.parametrize(
        ("reply", "error"),
        [
            (Reply(404), DitioNotFound),
            (Reply(400, b'{"error":"BadId","message":"f1"}'), DitioBadRequest),
            (Reply(403), DitioForbidden),
            (Reply(500), DitioServerError),
            (Reply(503, b"", {"Retry-After": "3"}), DitioServerError),
            (Reply(429), DitioServerError),
        ],
    )
    def test_maps_statuses_in_a_single_attempt(
        self, api: FakeServer, make: Callable[..., DitioClient], reply: Reply, error: type
    ) -> None:
        api.route("GET", FILE, reply)

        with pytest.raises(error), make().open_file(f"{api.url}{FILE}"):
            pass

        assert len(api.requests_to(FILE)) == 1

    def test_server_error_keeps_retry_after(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        api.route("GET", FILE, Reply(503, b"", {"Retry-After": "3"}))

        with pytest.raises(DitioServerError) as caught, make().open_file(f"{api.url}{FILE}"):
            pass

        assert caught.value.retry_after == 3.0

    def test_refuses_untrusted_host_by_default(
        self, make: Callable[..., DitioClient], foreign: FakeServer
    ) -> None:
        foreign.route("GET", "/blob", image())

        with (
            pytest.raises(DitioRefused, match="trusted_hosts"),
            make().open_file(f"{foreign.url}/blob"),
        ):
            pass

        assert foreign.seen == []

    def test_fetches_untrusted_host_anonymously_when_allowed(
        self, make: Callable[..., DitioClient], foreign: FakeServer
    ) -> None:
        foreign.route("GET", "/blob", image())

        with make(untrusted="anonymous").open_file(f"{foreign.url}/blob") as stream:
            assert read_all(stream) == JPEG

        (seen,) = foreign.seen
        assert seen.authorization is None

    def test_extra_trusted_host_receives_the_token(
        self, make: Callable[..., DitioClient], foreign: FakeServer
    ) -> None:
        foreign.route("GET", "/blob", image())

        with make(trusted_hosts=[foreign.netloc]).open_file(f"{foreign.url}/blob") as stream:
            read_all(stream)

        assert foreign.seen[0].authorization == "Bearer tok-1"

    def test_redirect_to_blob_host_drops_the_token(
        self, api: FakeServer, make: Callable[..., DitioClient], foreign: FakeServer
    ) -> None:
        blob = f"{foreign.url}/blob/f1?sv=2024&sig={SIG}"
        api.route("GET", FILE, needs_token(redirect(blob)))
        foreign.route("GET", "/blob/f1", refuses_token(image()))

        with make().open_file(f"{api.url}{FILE}") as stream:
            body = read_all(stream)

        assert body == JPEG
        assert stream.url == f"{foreign.url}/blob/f1?sv=REDACTED&sig=REDACTED"
        assert api.requests_to(FILE)[0].authorization == "Bearer tok-1"
        assert foreign.seen[0].authorization is None

    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    def test_follows_every_redirect_status(
        self, api: FakeServer, make: Callable[..., DitioClient], status: int
    ) -> None:
        api.route("GET", FILE, redirect("/core/api/file/f2", status))
        api.route("GET", "/core/api/file/f2", needs_token(image()))

        with make().open_file(f"{api.url}{FILE}") as stream:
            assert read_all(stream) == JPEG

    def test_no_token_after_the_chain_left_the_trusted_hosts(
        self, api: FakeServer, make: Callable[..., DitioClient], foreign: FakeServer
    ) -> None:
        api.route("GET", FILE, redirect(f"{foreign.url}/hop"))
        foreign.route("GET", "/hop", redirect(f"{api.url}/core/api/file/back"))
        api.route("GET", "/core/api/file/back", image())

        with make().open_file(f"{api.url}{FILE}") as stream:
            read_all(stream)

        assert [s.authorization for s in api.seen if s.path.startswith("/core")] == [
            "Bearer tok-1",
            None,
        ]

    def test_too_many_redirects_are_refused(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        api.route("GET", FILE, redirect(FILE))

        with (
            pytest.raises(DitioRefused, match="more than 2 redirects"),
            make(max_redirects=2).open_file(f"{api.url}{FILE}"),
        ):
            pass

        assert len(api.requests_to(FILE)) == 3

    def test_redirect_without_location_is_a_server_error(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        api.route("GET", FILE, Reply(302))

        with (
            pytest.raises(DitioServerError, match="Location"),
            make().open_file(f"{api.url}{FILE}"),
        ):
            pass

    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("ftp://127.0.0.1/f", "http"),
            ("file:///etc/passwd", "http"),
            ("/core/api/file/f1", "http"),
            ("http://user:pw@127.0.0.1/f", "credentials"),
            ("http://blob.invalid/f", "plain http"),
            ("http://[::1/f", "not a valid URL"),
        ],
    )
    def test_refuses_unsafe_urls_before_connecting(
        self, make: Callable[..., DitioClient], url: str, reason: str
    ) -> None:
        with pytest.raises(DitioRefused, match=reason), make(untrusted="anonymous").open_file(url):
            pass

    def test_truncated_body_is_incomplete(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        def truncated(_seen: Seen, handler: Any) -> None:
            head = "HTTP/1.1 200 OK\nContent-Type: image/jpeg\nContent-Length: 5000\n"
            write_raw(handler, head, JPEG[:1000], reset=False)

        api.route("GET", FILE, truncated)

        with (
            make().open_file(f"{api.url}{FILE}") as stream,
            pytest.raises(DitioIncompleteBody) as caught,
        ):
            read_all(stream)

        assert caught.value.expected == 5000
        assert caught.value.received == 1000
        assert isinstance(caught.value, DitioRetryableError)

    def test_reset_mid_body_is_incomplete(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        def reset(_seen: Seen, handler: Any) -> None:
            head = "HTTP/1.1 200 OK\nContent-Type: image/jpeg\nContent-Length: 100000\n"
            write_raw(handler, head, JPEG[:1000], reset=True)

        api.route("GET", FILE, reset)

        with (
            make().open_file(f"{api.url}{FILE}") as stream,
            pytest.raises(DitioIncompleteBody),
        ):
            read_all(stream)

    def test_announced_oversize_is_refused_before_reading(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        api.route("GET", FILE, image())

        with (
            pytest.raises(DitioResponseTooLarge) as caught,
            make(max_file_bytes=100).open_file(f"{api.url}{FILE}"),
        ):
            pass

        assert (caught.value.limit, caught.value.size) == (100, len(JPEG))

    def test_oversize_without_length_stops_while_reading(
        self, api: FakeServer, make: Callable[..., DitioClient]
    ) -> None:
        def unannounced(_seen: Seen, handler: Any) -> None:
            head = "HTTP/1.1 200 OK\nContent-Type: image/jpeg\nConnection: close\n"
            write_raw(handler, head, JPEG, reset=False)

        api.route("GET", FILE, unannounced)

        with make(max_file_bytes=2500).open_file(f"{api.url}{FILE}") as stream:
            assert stream.content_length is None
            chunks = []
            with pytest.raises(DitioResponseTooLarge):
                for chunk in stream.iter_chunks(1000):
                    chunks.append(chunk)

        assert sum(map(len, chunks)) == 2000

    def test_unreachable_file_host_is_a_connection_error(
        self, make: Callable[..., DitioClient], closed_port: int
    ) -> None:
        url = f"http://127.0.0.1:{closed_port}/blob?sig={SIG}"

        with (
            pytest.raises(DitioConnectionError) as caught,
            make(untrusted="anonymous").open_file(url),
        ):
            pass

        assert SIG not in chain_text(caught.value)


class TestOverHttps:
    """https hops, faked at the transport so nothing leaves the process."""

    BASE = "https://api.example.test/reporting"
    FILE_URL = "https://api.example.test/core/api/file/f1"

    def client(self) -> DitioClient:
        tokens: Any = StaticTokens()
        return DitioClient(base_url=self.BASE, tokens=tokens, sleep=lambda _s: None)

    @responses.activate
    def test_https_blob_redirect_gets_no_token(self) -> None:
        blob = f"https://blob.example.test/c/f1?sig={SIG}"
        responses.get(self.FILE_URL, status=302, headers={"Location": blob})
        responses.get(blob, body=JPEG, content_type="image/jpeg")

        with self.client().open_file(self.FILE_URL) as stream:
            assert read_all(stream) == JPEG

        first, second = responses.calls
        assert first.request.headers["Authorization"] == "Bearer tok-1"
        assert "Authorization" not in second.request.headers

    @responses.activate
    def test_downgrade_to_plain_http_is_refused(self) -> None:
        responses.get(
            self.FILE_URL, status=302, headers={"Location": "http://blob.example.test/f1"}
        )

        with (
            pytest.raises(DitioRefused, match="plain http"),
            self.client().open_file(self.FILE_URL),
        ):
            pass

        assert len(responses.calls) == 1


def test_secrets_stay_out_of_errors_and_logs(
    api: FakeServer,
    make: Callable[..., DitioClient],
    foreign: FakeServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.replies(
        "GET",
        IMAGES,
        Reply(503, b"token was Bearer tok-1"),
        Reply.json({"error": "Bad", "message": "echo tok-1"}, 400),
    )
    api.route("GET", FILE, redirect(f"{foreign.url}/blob?sv=1&sig={SIG}"))
    foreign.route("GET", "/blob", Reply(500, f"bad sig {SIG}".encode()))
    client = make()
    errors: list[BaseException] = []

    with caplog.at_level(logging.DEBUG, logger="ditio_images"):
        with pytest.raises(DitioBadRequest) as bad:
            client.list_images({"ContinuationToken": "c0ntinuation"})
        errors.append(bad.value)
        with pytest.raises(DitioServerError) as failed, client.open_file(f"{api.url}{FILE}"):
            pass
        errors.append(failed.value)

    texts = [chain_text(error) for error in errors]
    texts += [record.getMessage() for record in caplog.records]
    for secret in ("tok-1", SIG, "client-s3cr3t", "c0ntinuation"):
        assert all(secret not in text for text in texts), secret


def test_speaking_https_to_a_plain_http_port_fails_at_once_as_configuration(serve):
    from ditio_images.auth import TokenProvider
    from ditio_images.exceptions import DitioConfigError as ConfigError

    server = serve()
    url = server.url.replace("http://", "https://")
    policy = RetryPolicy(max_attempts=4, backoff_base=0, jitter=0)
    tokens = TokenProvider(
        token_url=f"{url}/connect/token",
        client_id="c",
        client_secret="s",
        session=requests.Session(),
        policy=policy,
    )
    with pytest.raises(ConfigError, match="scheme"):
        tokens.token()
    assert len(server.seen) <= 1
