"""OAuth client-credentials tokens for the Ditio APIs, cached and refreshed before expiry."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from ditio_images.client import (
    REQUEST_ERRORS,
    USER_AGENT,
    connection_failure,
    is_loopback_host,
    read_limited,
)
from ditio_images.exceptions import (
    DitioAuthError,
    DitioConfigError,
    DitioServerError,
)
from ditio_images.redact import redact_text, redact_url, scrub_exception, truncate_body
from ditio_images.retry import Outcome, RetryPolicy, explain, parse_retry_after

logger = logging.getLogger(__name__)

DEFAULT_LIFETIME = 1800.0
TOKEN_BODY_LIMIT = 64 * 1024

AUTH_HINTS = {
    "invalid_client": "check the client id and secret, and that they belong to this "
    "environment (production credentials are refused in test and the reverse)",
    "invalid_scope": "check that the client is granted the scope {scope!r}",
    "unauthorized_client": "check that the client may use the client_credentials grant with "
    "the scope {scope!r}",
}
GENERIC_HINT = "check the client id and secret, the scope {scope!r} and the environment"


class TokenProvider:
    """Fetches and caches bearer tokens; safe to share between threads.

    One lock guards the cache, so threads that need a new token at the same moment cause a
    single token request.

    :param token_url: the identity server's token endpoint, e.g.
        ``https://identity.ditio.app/connect/token``.
    :param client_id: API client id.
    :param client_secret: API client secret; never logged.
    :param scope: space-separated scopes to request.
    :param session: HTTP session for the token requests.
    :param policy: retries and timeouts for the token request.
    :param refresh_margin: seconds before expiry at which a token is replaced; at most half
        the token's lifetime.
    :param on_token: called with every new token, e.g. to mask it in logs.
    :param clock: monotonic clock in seconds; tests pass a fake.
    :param sleep: used between retries; tests pass a fake.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str = "reportingapiv1",
        session: requests.Session,
        policy: RetryPolicy,
        refresh_margin: float = 60.0,
        on_token: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._token_url = _check_token_url(token_url)
        self._client_id = _require("client_id", client_id)
        self._client_secret = _require("client_secret", client_secret)
        self._scope = _require("scope", scope)
        self._refresh_margin = _check_margin(refresh_margin)
        self._session = session
        self._policy = policy
        self._on_token = on_token
        self._clock = clock
        self._sleep = sleep

        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._fetch_count = 0

    @property
    def token_url(self) -> str:
        """Where tokens are fetched from."""
        return self._token_url

    @property
    def fetch_count(self) -> int:
        """How many tokens were fetched so far."""
        return self._fetch_count

    def token(self) -> str:
        """The current token, fetched first when absent or close to expiry."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                return self._fetch()
            return self._token

    def refresh(self, stale: str) -> str:
        """Replace ``stale`` after the API rejected it; return the token to use now.

        When another thread already replaced ``stale``, its token is returned without a new
        request, so any number of simultaneous 401s cause one refresh.
        """
        with self._lock:
            if self._token in (None, stale) or self._clock() >= self._refresh_at:
                return self._fetch()
            return self._token

    def _fetch(self) -> str:
        started = self._clock()
        token, lifetime = self._policy.run(
            self._request_token,
            describe=f"POST {redact_url(self._token_url)}",
            sleep=self._sleep,
        )

        self._token = token
        self._refresh_at = started + lifetime - min(self._refresh_margin, lifetime / 2)
        self._fetch_count += 1
        if self._on_token is not None:
            self._on_token(token)
        logger.info(
            "Fetched an access token from %s, valid for %.0fs",
            redact_url(self._token_url),
            lifetime,
        )
        return token

    def _request_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "scope": self._scope,
        }
        try:
            response = self._session.post(
                self._token_url,
                data=form,
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                timeout=self._policy.timeout,
                allow_redirects=False,
                stream=True,
            )
            with response:
                body = read_limited(response, TOKEN_BODY_LIMIT)
        except REQUEST_ERRORS as err:
            scrub_exception(err)
            reason = redact_text(explain(err), [self._client_secret])
            raise connection_failure(self._token_url, err, reason) from err
        return self._parse(response.status_code, response.headers, body)

    def _parse(self, status: int, headers: Mapping[str, str], body: bytes) -> tuple[str, float]:
        outcome = self._policy.classify(status)
        if outcome is Outcome.OK and status < 300:
            return self._read_token(status, body)
        if outcome is Outcome.RETRY:
            raise DitioServerError(
                url=self._token_url,
                status=status,
                detail=self._detail(body),
                retry_after=parse_retry_after(headers.get("Retry-After")),
                method="POST",
            )
        if outcome is Outcome.NOT_FOUND or status < 400:
            raise DitioConfigError(
                f"Token endpoint {redact_url(self._token_url)} answered {status}: check "
                "token_url; it should be the identity server's /connect/token, e.g. "
                "https://identity.ditio.app/connect/token.",
                field="token_url",
            )
        raise self._refused(status, body)

    def _read_token(self, status: int, body: bytes) -> tuple[str, float]:
        payload = _json_object(body)
        token = payload.get("access_token")
        if not isinstance(token, str) or not token.strip():
            # The body is not quoted: it may hold a token in an unexpected field.
            raise DitioServerError(
                url=self._token_url,
                status=status,
                detail="the answer is not a JSON object with an access_token",
                method="POST",
            )
        return token, _lifetime(payload.get("expires_in"))

    def _refused(self, status: int, body: bytes) -> DitioAuthError:
        code = truncate_body(str(_json_object(body).get("error") or ""), 60)
        hint = AUTH_HINTS.get(code, GENERIC_HINT).format(scope=self._scope)
        return DitioAuthError(
            f"Token endpoint {redact_url(self._token_url)} refused client "
            f"{self._client_id!r} with {status} {code or 'and no error code'} "
            f"({self._detail(body)}): {hint}."
        )

    def _detail(self, body: bytes) -> str:
        text = body.decode("utf-8", errors="replace")
        return truncate_body(redact_text(text, [self._client_secret])) or "no details"


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _lifetime(value: Any) -> float:
    """Seconds the token lives; a missing or unusable ``expires_in`` means the default."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return DEFAULT_LIFETIME
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DEFAULT_LIFETIME
    if not math.isfinite(value) or value <= 0:
        return DEFAULT_LIFETIME
    return float(value)


def _check_token_url(token_url: str) -> str:
    text = (token_url or "").strip()
    if not _is_safe_endpoint(text):
        raise DitioConfigError(
            f"token_url {redact_url(text)!r} is invalid: use an https URL (plain http only for "
            "loopback test servers), e.g. https://identity.ditio.app/connect/token.",
            field="token_url",
        )
    return text


def _is_safe_endpoint(url: str) -> bool:
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return False
    if not hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(hostname))


def _require(field: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DitioConfigError(
            f"{field} is empty; set it in the Ditio connection.",
            field=field,
        )
    return value


def _check_margin(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise DitioConfigError(
            f"refresh_margin={value!r} is invalid; use seconds of 0 or more.",
            field="refresh_margin",
        )
    return float(value)
