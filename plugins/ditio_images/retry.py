"""One retry policy for Ditio calls and S3 writes.

Delay before retry ``n`` (``n >= 1``)::

    backoff = min(backoff_max, backoff_base * 2 ** (n - 1)) * (1 - jitter * rand())
    delay = max(backoff, min(retry_after, retry_after_max))   # when Retry-After was sent

``rand()`` is uniform in ``[0, 1)``, so with the default ``jitter=0.5`` each delay lies in
``(backoff / 2, backoff]``; ``jitter=0`` makes delays deterministic. A Retry-After header is a
floor, never a ceiling: the server's wish is honoured (up to ``retry_after_max``) but cannot
shorten our own exponential backoff when a server keeps answering ``Retry-After: 0``.

When :meth:`RetryPolicy.run` has spent its attempts it raises
:class:`~ditio_images.exceptions.DitioRetriesExhausted`, a retryable error that enclosing
policies pass on untouched, and Airflow's task retries take over.
"""

from __future__ import annotations

import email.utils
import enum
import logging
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import botocore.exceptions
import requests
import urllib3.exceptions

from ditio_images.exceptions import (
    DitioConfigError,
    DitioError,
    DitioRetriesExhausted,
    DitioRetryableError,
)
from ditio_images.redact import scrub_exception, scrub_text, truncate_body

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.IncompleteReadError,
    ConnectionError,
    TimeoutError,
)
TRANSIENT_S3_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError"}
)

_SECONDS = re.compile(r"\d+(\.\d+)?")
_INT_FIELDS = frozenset({"max_attempts"})
_FIELD_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "max_attempts": (lambda value: 1 <= value <= 100, "an integer from 1 to 100"),
    "backoff_base": (lambda value: 0 <= value <= 3600, "seconds from 0 to 3600"),
    "backoff_max": (lambda value: 0 <= value <= 3600, "seconds from 0 to 3600"),
    "retry_after_max": (lambda value: 0 <= value <= 3600, "seconds from 0 to 3600"),
    "jitter": (lambda value: 0 <= value <= 1, "a fraction from 0 to 1"),
    "connect_timeout": (lambda value: 0 < value <= 3600, "seconds above 0, at most 3600"),
    "read_timeout": (lambda value: 0 < value <= 86400, "seconds above 0, at most 86400"),
}


class Outcome(enum.Enum):
    """What to do with an HTTP status."""

    OK = "ok"
    RETRY = "retry"
    REFRESH = "refresh"
    NOT_FOUND = "not_found"
    FATAL = "fatal"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry transient faults.

    :param max_attempts: total tries per operation, at least 1.
    :param backoff_base: seconds before the first retry; doubles for each further retry.
    :param backoff_max: cap on the exponential backoff, in seconds.
    :param retry_after_max: cap on an honoured Retry-After, in seconds.
    :param jitter: fraction of the backoff that is randomly taken off; 0 disables jitter.
    :param connect_timeout: seconds to establish a connection.
    :param read_timeout: seconds to wait for the next bytes from the server.
    """

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    jitter: float = 0.5
    connect_timeout: float = 10.0
    read_timeout: float = 300.0

    def __post_init__(self) -> None:
        for field, (is_valid, rule) in _FIELD_RULES.items():
            value = getattr(self, field)
            if not _is_number(value, integer=field in _INT_FIELDS) or not is_valid(value):
                raise DitioConfigError(
                    f"Retry setting {field}={value!r} is invalid: set the connection extra "
                    f"{field!r} to {rule}.",
                    field=field,
                )

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any] | None) -> RetryPolicy:
        """Build a policy from connection extras; absent or empty keys keep their defaults."""
        values: dict[str, Any] = {}
        for field in _FIELD_RULES:
            raw = (extras or {}).get(field)
            if raw is not None and raw != "":
                values[field] = _coerce(field, raw)
        return cls(**values)

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts in the form requests expects."""
        return (self.connect_timeout, self.read_timeout)

    def classify(self, status: int) -> Outcome:
        """Map an HTTP status to what the caller should do with it."""
        if 200 <= status < 400:
            return Outcome.OK
        if status == 401:
            return Outcome.REFRESH
        if status == 404:
            return Outcome.NOT_FOUND
        if status in RETRY_STATUSES:
            return Outcome.RETRY
        return Outcome.FATAL

    def delay(
        self,
        retry_number: int,
        retry_after: str | float | None = None,
        *,
        now: datetime | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        if retry_number < 1:
            raise ValueError(f"retry_number must be 1 or more, got {retry_number}")

        exponent = min(retry_number - 1, 64)
        backoff = min(self.backoff_max, self.backoff_base * 2.0**exponent)
        backoff *= 1 - self.jitter * rand()

        asked = parse_retry_after(retry_after, now)
        if asked is None:
            return backoff
        return max(backoff, min(asked, self.retry_after_max))

    def run(
        self,
        operation: Callable[[], T],
        *,
        describe: str,
        sleep: Callable[[float], None] = time.sleep,
        log: logging.Logger | None = None,
    ) -> T:
        """Call ``operation`` until it succeeds, retrying transient faults with backoff.

        Fatal and unknown errors propagate at once, and so does a
        :class:`DitioRetriesExhausted` from a nested policy. When the attempts are spent a
        :class:`DitioRetriesExhausted` (a :class:`DitioRetryableError`) chained from the last
        error is raised.
        """
        log = log or logger
        attempt = 1
        while True:
            try:
                return operation()
            except (DitioError, botocore.exceptions.ClientError, *TRANSIENT_ERRORS) as err:
                if not is_transient(err):
                    raise
                if attempt >= self.max_attempts:
                    raise self._exhausted(describe, err, log) from scrub_exception(err)
                asked = getattr(err, "retry_after", None)
                wait = self.delay(attempt, asked)
                log.warning(
                    "%s failed (attempt %d/%d): %s; retrying in %.1fs%s",
                    describe,
                    attempt,
                    self.max_attempts,
                    explain(err),
                    wait,
                    self._capped_note(asked),
                )
            sleep(wait)
            attempt += 1

    def _capped_note(self, retry_after: str | float | None) -> str:
        asked = parse_retry_after(retry_after)
        if asked is None or asked <= self.retry_after_max:
            return ""
        return f" (the server asked for {asked:.0f}s; capped by retry_after_max)"

    def _exhausted(
        self, describe: str, err: BaseException, log: logging.Logger
    ) -> DitioRetriesExhausted:
        reason = explain(err)
        log.error("%s failed %d times; giving up: %s", describe, self.max_attempts, reason)
        return DitioRetriesExhausted(
            f"{describe} failed {self.max_attempts} times, so this policy's retry budget is "
            f"spent and Airflow's task retries take over. Last error: {reason}",
            url=getattr(err, "url", "") if isinstance(err, DitioError) else "",
            retry_after=getattr(err, "retry_after", None),
        )


def parse_retry_after(value: str | float | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (seconds or HTTP-date); ``None`` if unusable.

    Never negative: a date in the past means "now". Not capped: the policy applies its cap.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds: float | None = float(value)
    else:
        seconds = _parse_header(str(value).strip(), now)
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def is_transient(err: BaseException) -> bool:
    """Whether ``err`` is a fault worth retrying."""
    if isinstance(err, DitioError):
        return isinstance(err, DitioRetryableError) and not isinstance(err, DitioRetriesExhausted)
    if isinstance(err, botocore.exceptions.ClientError):
        return _is_transient_client_error(err)
    return isinstance(err, TRANSIENT_ERRORS)


def explain(err: BaseException) -> str:
    """A one-line, scrubbed description of ``err`` for logs and messages."""
    if isinstance(err, DitioError):
        return str(err)
    return truncate_body(f"{type(err).__name__}: {scrub_text(str(err))}", 500)


def _is_transient_client_error(err: botocore.exceptions.ClientError) -> bool:
    response = err.response or {}
    code = response.get("Error", {}).get("Code", "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return code in TRANSIENT_S3_CODES or status >= 500 or status == 429


def _parse_header(text: str, now: datetime | None) -> float | None:
    if _SECONDS.fullmatch(text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None

    now = now or datetime.now(UTC)
    return (_aware(when) - _aware(now)).total_seconds()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_number(value: Any, *, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    if integer:
        return isinstance(value, int)
    return isinstance(value, int | float) and math.isfinite(value)


def _coerce(field: str, raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError as err:
            raise DitioConfigError(
                f"Retry setting {field}={raw!r} is not a number: set the connection extra "
                f"{field!r} to {_FIELD_RULES[field][1]}.",
                field=field,
            ) from err
        raw = int(number) if field in _INT_FIELDS and number.is_integer() else number
    if field in _INT_FIELDS and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return raw
