"""HTTP client for the Ditio Reporting API and the file bytes it links to.

The bearer token only travels to trusted hosts: https, or plain http on loopback test
servers. File downloads follow redirects one hop at a time so that a hop to blob storage,
which must not see the token, is fetched anonymously; a redirect target on a trusted host only
gets the token when it asks for one with a 401.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlencode, urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from ditio_images.exceptions import (
    DitioAuthError,
    DitioBadRequest,
    DitioConfigError,
    DitioConnectionError,
    DitioError,
    DitioForbidden,
    DitioIncompleteBody,
    DitioNotFound,
    DitioRefused,
    DitioResponseTooLarge,
    DitioServerError,
)
from ditio_images.redact import (
    redact_text,
    redact_url,
    scrub_exception,
    truncate_body,
    url_secrets,
)
from ditio_images.retry import Outcome, RetryPolicy, explain, parse_retry_after

if TYPE_CHECKING:
    from ditio_images.auth import TokenProvider

logger = logging.getLogger(__name__)

VERSION = "0.1.0"
USER_AGENT = f"ditio-images/{VERSION}"

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ERROR_BODY_LIMIT = 4096
MAX_PAGE_BYTES = 256 * 1024**2
DEFAULT_PORTS = {"http": 80, "https": 443}
DITIO_DOMAINS = ("ditio.app", "ditio.dev")
UNTRUSTED_CHOICES = ("refuse", "anonymous")
UNTRUSTED_HINT = (
    "(untrusted host, asked without the token; add it to trusted_hosts if it needs the token)"
)

REQUEST_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
BODY_ERRORS = (
    *REQUEST_ERRORS,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,
    OSError,
)


def build_session(pool_size: int = 16) -> requests.Session:
    """A session with ``pool_size`` pooled connections per host and no transport retries."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return configure_session(session, pool_size)


def configure_session(session: requests.Session, pool_size: int = 16) -> requests.Session:
    """Mount adapters on ``session`` that pool ``pool_size`` connections and never retry.

    Retries belong to :class:`~ditio_images.retry.RetryPolicy`; transport retries below it
    would multiply the attempts and hide the faults from its log.
    """
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8 or ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_key(parts: SplitResult) -> str:
    """``host`` or ``host:port`` (port only when not the scheme's default), lowercased."""
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or port == DEFAULT_PORTS.get(parts.scheme.lower()):
        return host
    return f"{host}:{port}"


def encode_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query pairs: lists become repeated keys, booleans ``true``/``false``, ``None`` is dropped."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, set | frozenset):
            value = sorted(value, key=str)
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, _encode_value(item)) for item in values if item is not None)
    return pairs


def read_limited(response: requests.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of a streamed body; the rest is dropped with the connection."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(min(limit, 64 * 1024)):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


class FileStream:
    """The body of one file response, read in bounded chunks.

    Attributes: ``url`` (final URL after redirects, redacted), ``status``, ``content_type``
    (lowercased, without parameters), ``content_length`` (``None`` when not announced) and
    ``bytes_read`` so far.

    :param response: a streamed response with a 2xx status.
    :param max_bytes: more bytes than this raise :class:`DitioResponseTooLarge`.
    """

    def __init__(self, response: requests.Response, *, max_bytes: int) -> None:
        self._response = response
        self._max_bytes = max_bytes
        self.url = redact_url(response.url)
        self.status = response.status_code
        self.content_type = _content_type(response.headers)
        self.content_length = _content_length(response.headers)
        self.bytes_read = 0
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        self._encoded = encoding not in ("", "identity")

    def iter_chunks(self, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """Yield the body in chunks of at most ``chunk_size`` bytes, checking its size."""
        try:
            for chunk in self._response.iter_content(chunk_size):
                self._count(chunk)
                yield chunk
        except BODY_ERRORS as err:
            raise DitioIncompleteBody(
                url=self.url,
                received=self.bytes_read,
                expected=self.content_length,
                reason=explain(err),
            ) from scrub_exception(err)
        self._check_complete()

    def close(self) -> None:
        """Release the connection; an unread rest of the body is discarded."""
        self._response.close()

    def _count(self, chunk: bytes) -> None:
        self.bytes_read += len(chunk)
        if self.bytes_read > self._max_bytes:
            raise DitioResponseTooLarge(url=self.url, limit=self._max_bytes, size=self.bytes_read)

    def _check_complete(self) -> None:
        # Content-Length counts encoded bytes, so only an unencoded body can be compared.
        expected = self.content_length
        if self._encoded or expected is None or self.bytes_read == expected:
            return
        raise DitioIncompleteBody(
            url=self.url,
            received=self.bytes_read,
            expected=expected,
            reason="size differs from Content-Length",
        )


class DitioClient:
    """Lists image rows and opens file bodies, sending the bearer token only where trusted.

    :param base_url: Reporting API root, e.g. ``https://core-api.ditio.app/reporting``.
    :param tokens: source of bearer tokens.
    :param session: HTTP session, e.g. shared with the token provider; its http(s) adapters
        are replaced by pooled ones without transport retries. By default a new session.
    :param policy: retry policy and timeouts.
    :param trusted_hosts: extra ``host[:port]`` entries that may receive the token.
    :param untrusted: what to do with a file URL on an untrusted host: ``"refuse"`` raises
        :class:`DitioRefused`, ``"anonymous"`` fetches it without the token.
    :param max_redirects: redirects followed per file before giving up.
    :param max_file_bytes: larger files raise :class:`DitioResponseTooLarge`.
    :param pool_size: connections kept per host by the default session.
    :param sleep: used between retries; tests pass a fake.
    """

    def __init__(
        self,
        *,
        base_url: str,
        tokens: TokenProvider,
        session: requests.Session | None = None,
        policy: RetryPolicy | None = None,
        trusted_hosts: Iterable[str] = (),
        untrusted: str = "refuse",
        max_redirects: int = 5,
        max_file_bytes: int = 2 * 1024**3,
        pool_size: int = 16,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        self.trusted_hosts = _trusted_hosts(self.base_url, trusted_hosts)
        self._untrusted = _check_choice("untrusted", untrusted, UNTRUSTED_CHOICES)
        self._max_redirects = _check_count("max_redirects", max_redirects, minimum=0)
        self._max_file_bytes = _check_count("max_file_bytes", max_file_bytes, minimum=1)
        pool_size = _check_count("pool_size", pool_size, minimum=1)

        self._owns_session = session is None
        if session is None:
            session = build_session(pool_size)
        else:
            configure_session(session, pool_size)
        self._session = session
        self.tokens = tokens
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self._session.close()

    def list_images(self, params: Mapping[str, Any], *, context: str = "") -> dict[str, Any]:
        """One page of ``GET /v1/images``, retried per the policy; returns the envelope.

        :param params: query parameters, e.g. ``ProjectId``, ``ChunkLimit``,
            ``ContinuationToken``; see :func:`encode_params` for value encoding.
        :param context: the filter in force, named by errors such as :class:`DitioForbidden`.
        """
        url = f"{self.base_url}/v1/images"
        query = encode_params(params)
        describe = f"GET {redact_url(f'{url}?{urlencode(query)}' if query else url)}"
        return self.policy.run(
            lambda: self._fetch_page(url, query, context), describe=describe, sleep=self._sleep
        )

    @contextmanager
    def open_file(self, url: str, *, context: str = "") -> Iterator[FileStream]:
        """Open a file URL from a row in one attempt; the caller retries the whole transfer.

        :param url: ``downloadUrl`` (or a resized variant) from a row.
        :param context: what the file belongs to, named by :class:`DitioForbidden`.
        """
        stream = FileStream(self._open(url, context), max_bytes=self._max_file_bytes)
        try:
            yield stream
        finally:
            stream.close()

    def _fetch_page(self, url: str, query: list[tuple[str, str]], context: str) -> dict[str, Any]:
        token = self.tokens.token()
        response = self._get(url, params=query, token=token)
        if response.status_code == 401:
            response.close()
            token = self.tokens.refresh(token)
            response = self._get(url, params=query, token=token)

        with response:
            status = response.status_code
            if 200 <= status < 300:
                return _parse_envelope(response.url, _read_page(response))
            if 300 <= status < 400 or status == 404:
                raise self._wrong_base_url(response, context)
            raise self._status_error(response, token, context, trusted=True)

    def _open(self, url: str, context: str) -> requests.Response:
        current = url
        trusted_chain = True
        for hop in range(self._max_redirects + 1):
            # Once a hop left the trusted hosts, later hops never get the token back.
            trusted_chain = self._admit(current, first=hop == 0) and trusted_chain
            response, token = self._fetch_hop(current, trusted=trusted_chain, redirected=hop > 0)
            if response.status_code not in REDIRECT_STATUSES:
                return self._accept(response, token, context, trusted=trusted_chain)
            current = _next_hop(response, current)
            logger.debug("Following a redirect to %s", redact_url(current))
        raise DitioRefused(
            url=url,
            reason=f"more than {self._max_redirects} redirects; raise max_redirects if the "
            "chain is legitimate",
        )

    def _admit(self, url: str, *, first: bool) -> bool:
        """Whether ``url`` may receive the token; raises :class:`DitioRefused` if unsafe."""
        try:
            parts = urlsplit(url)
            key = host_key(parts)
        except ValueError as err:
            raise DitioRefused(url=url, reason=f"it is not a valid URL ({err})") from err

        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise DitioRefused(url=url, reason="only absolute http(s) URLs are fetched")
        if parts.username is not None or parts.password is not None:
            raise DitioRefused(url=url, reason="the URL carries credentials")
        if scheme == "http" and not is_loopback_host(parts.hostname):
            raise DitioRefused(url=url, reason="plain http is only used for loopback hosts")

        if key in self.trusted_hosts:
            return True
        if first and self._untrusted == "refuse":
            raise DitioRefused(
                url=url,
                reason=f"host {key} is not trusted with the token; add it to trusted_hosts, or "
                "set untrusted='anonymous' to fetch such URLs without the token",
            )
        return False

    def _fetch_hop(
        self, url: str, *, trusted: bool, redirected: bool = False
    ) -> tuple[requests.Response, str | None]:
        if not trusted or redirected:
            # Signed blob URLs answer 400 to a bearer token, even on the API's own host.
            response = self._get(url, file=True)
            if not trusted or response.status_code != 401:
                return response, None
            response.close()

        token = self.tokens.token()
        response = self._get(url, token=token, file=True)
        if response.status_code != 401:
            return response, token
        response.close()
        token = self.tokens.refresh(token)
        return self._get(url, token=token, file=True), token

    def _accept(
        self, response: requests.Response, token: str | None, context: str, *, trusted: bool
    ) -> requests.Response:
        status = response.status_code
        length = _content_length(response.headers)
        if 200 <= status < 300 and (length is None or length <= self._max_file_bytes):
            return response

        with response:
            if 200 <= status < 300:
                raise DitioResponseTooLarge(
                    url=response.url, limit=self._max_file_bytes, size=length or 0
                )
            raise self._status_error(response, token, context, trusted=trusted)

    def _get(
        self,
        url: str,
        *,
        params: list[tuple[str, str]] | None = None,
        token: str | None = None,
        file: bool = False,
    ) -> requests.Response:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if file:
            # The bytes are stored as sent, and Content-Length must count exactly them.
            headers.update({"Accept": "*/*", "Accept-Encoding": "identity"})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self._session.get(
                url,
                params=params,
                headers=headers,
                timeout=self.policy.timeout,
                stream=True,
                allow_redirects=False,
            )
        except REQUEST_ERRORS as err:
            raise connection_failure(url, err, explain(err)) from scrub_exception(err)

    def _status_error(
        self, response: requests.Response, token: str | None, context: str, *, trusted: bool
    ) -> DitioError:
        status = response.status_code
        url = response.url
        outcome = self.policy.classify(status)
        if outcome is Outcome.NOT_FOUND:
            return DitioNotFound(url=url)
        if outcome is Outcome.REFRESH and trusted:
            return DitioAuthError(
                f"Ditio answered 401 to GET {redact_url(url)} right after a token refresh: the "
                "API client is disabled or lacks the scope for this endpoint. Check the client "
                "in Ditio and the scope in the connection."
            )

        detail = _error_detail(response, token)
        if outcome is Outcome.RETRY:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return DitioServerError(url=url, status=status, detail=detail, retry_after=retry_after)
        if status in (401, 403):
            if not trusted:
                context = f"{context} {UNTRUSTED_HINT}".strip()
            return DitioForbidden(url=url, context=context, status=status)
        return DitioBadRequest(url=url, detail=detail, status=status)

    def _wrong_base_url(self, response: requests.Response, context: str) -> DitioConfigError:
        where = f" or the filter {context} names something unknown" if context else ""
        return DitioConfigError(
            f"GET {redact_url(response.url)} answered {response.status_code}: base_url "
            f"{redact_url(self.base_url)!r} may not point at the Reporting API{where}. Set "
            "base_url to the API root, e.g. https://core-api.ditio.app/reporting.",
            field="base_url",
        )


def _read_page(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(1024 * 1024):
            size += len(chunk)
            if size > MAX_PAGE_BYTES:
                raise DitioResponseTooLarge(url=response.url, limit=MAX_PAGE_BYTES, size=size)
            chunks.append(chunk)
    except BODY_ERRORS as err:
        expected = _content_length(response.headers)
        raise DitioIncompleteBody(
            url=response.url, received=size, expected=expected, reason=explain(err)
        ) from scrub_exception(err)
    return b"".join(chunks)


def _parse_envelope(url: str, body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None

    problem = _envelope_problem(payload)
    if problem:
        raise DitioServerError(
            url=url, status=200, detail=f"the body is not the documented envelope: {problem}"
        )
    return payload


def _envelope_problem(payload: Any) -> str:
    if not isinstance(payload, dict):
        return "expected a JSON object"
    if not isinstance(payload.get("data"), list):
        return "'data' is missing or not a list"
    if not isinstance(payload.get("continuationToken"), str | None):
        return "'continuationToken' is neither a string nor null"
    return ""


def _error_detail(response: requests.Response, token: str | None) -> str:
    try:
        body = read_limited(response, ERROR_BODY_LIMIT).decode("utf-8", errors="replace")
    except BODY_ERRORS:
        body = ""

    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("error"):
        body = f"{payload['error']}: {payload.get('message') or ''}".rstrip(": ")
    return truncate_body(redact_text(body, [token or "", *url_secrets(response.url)]))


def _next_hop(response: requests.Response, current: str) -> str:
    location = response.headers.get("Location")
    status = response.status_code
    response.close()
    if not location:
        raise DitioServerError(url=current, status=status, detail="redirect without a Location")
    return urljoin(current, location)


def _content_type(headers: Mapping[str, str]) -> str:
    value = headers.get("Content-Type", "").split(";")[0].strip().lower()
    return value or "application/octet-stream"


def _content_length(headers: Mapping[str, str]) -> int | None:
    value = (headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


def _encode_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _check_base_url(base_url: str) -> str:
    text = (base_url or "").strip().rstrip("/")
    try:
        parts = urlsplit(text)
        host_key(parts)
    except ValueError as err:
        raise DitioConfigError(
            f"base_url {redact_url(text)!r} is not a valid URL ({err}); set it to the API "
            "root, e.g. https://core-api.ditio.app/reporting.",
            field="base_url",
        ) from err

    problem = _base_url_problem(parts)
    if problem:
        raise DitioConfigError(
            f"base_url {redact_url(text)!r} {problem}; set it to the API root, e.g. "
            "https://core-api.ditio.app/reporting.",
            field="base_url",
        )
    return text


def _base_url_problem(parts: SplitResult) -> str:
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return "is not an absolute http(s) URL"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return "uses plain http, which is only allowed for loopback test servers"
    return ""


def _trusted_hosts(base_url: str, extras: Iterable[str]) -> frozenset[str]:
    parts = urlsplit(base_url)
    hosts = {host_key(parts)}
    hostname = (parts.hostname or "").lower()
    for domain in DITIO_DOMAINS:
        if hostname == domain or hostname.endswith(f".{domain}"):
            hosts.add(f"core-api.{domain}")
    if isinstance(extras, str):
        extras = extras.split(",")
    hosts.update(_trusted_entry(entry) for entry in extras if entry.strip())
    return frozenset(hosts)


def _trusted_entry(entry: str) -> str:
    text = entry.strip()
    try:
        key = host_key(urlsplit(text if "://" in text else f"https://{text}"))
    except ValueError:
        key = ""
    if not key:
        raise DitioConfigError(
            f"trusted_hosts entry {entry!r} is not a host; use host or host:port, e.g. "
            "core-api.ditio.app or 127.0.0.1:8080.",
            field="trusted_hosts",
        )
    return key


def _check_choice(field: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise DitioConfigError(
            f"{field}={value!r} is not supported; use one of {', '.join(choices)}.", field=field
        )
    return value


def _check_count(field: str, value: int, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DitioConfigError(
            f"{field}={value!r} is invalid; use a whole number of at least {minimum}.",
            field=field,
        )
    return value


# TLS failures that say the URL itself is wrong (http spoken to an https port, or the other way
# round, or a certificate that does not verify): trying again cannot help.
_PERMANENT_TLS = ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "CERTIFICATE_VERIFY_FAILED")


def connection_failure(url: str, err: BaseException, reason: str) -> DitioError:
    """The error for a request that got no HTTP answer: fatal for a broken TLS setup, else
    retryable."""
    text = str(err).upper()
    if isinstance(err, requests.exceptions.SSLError) and any(m in text for m in _PERMANENT_TLS):
        return DitioConfigError(
            f"TLS with {redact_url(url)} failed ({reason}). Check the URL's scheme (https or "
            "http), the host and its certificate; retrying will not help.",
            field="host",
        )
    return DitioConnectionError(url=url, reason=reason)
