"""Errors raised while talking to Ditio.

Two branches decide what happens next: a :class:`DitioFatalError` fails the task without
retrying, a :class:`DitioRetryableError` is retried by :class:`~ditio_images.retry.RetryPolicy`
and then by Airflow. :class:`DitioNotFound` and :class:`DitioRefused` belong to neither: the
caller records the file as missing or skipped and moves on.

Every URL is redacted when the error is built, and messages never carry a token or secret.
"""

from __future__ import annotations

from typing import Any

from ditio_images.redact import redact_url


class DitioError(Exception):
    """Root of every error raised by this package.

    :param message: what went wrong and what to do about it.
    :param url: the URL involved, if any; stored redacted.
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = redact_url(url) if url else ""

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword arguments, so rebuild from the state instead of the args.
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls: type[DitioError], args: tuple[Any, ...], state: dict[str, Any]) -> DitioError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class DitioFatalError(DitioError):
    """Retrying cannot help: the task should fail without another try."""


class DitioRetryableError(DitioError):
    """A transient fault: trying again later may succeed.

    :param retry_after: seconds the server asked us to wait, if it said so.
    """

    def __init__(self, message: str, *, url: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, url=url)
        self.retry_after = retry_after


class DitioRetriesExhausted(DitioRetryableError):
    """A retry policy spent its attempts; the last fault is the ``__cause__``.

    Still retryable for Airflow, but an enclosing retry policy lets it pass instead of
    multiplying the attempts.
    """


class DitioConfigError(DitioFatalError):
    """A connection field or parameter is invalid; the message names it and the fix.

    :param field: name of the offending field or parameter.
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class DitioAuthError(DitioFatalError):
    """The token endpoint refused the credentials, or a fresh token was rejected."""


class DitioBadRequest(DitioFatalError):
    """Ditio rejected the request itself (400, or another status no retry can fix).

    :param url: the request URL (stored redacted).
    :param detail: the error body, already truncated.
    :param status: the HTTP status, 400 unless another non-retryable status was answered.
    """

    def __init__(self, *, url: str, detail: str = "", status: int = 400) -> None:
        super().__init__(
            f"Ditio answered {status} to GET {redact_url(url)}: {detail or 'no details'}. "
            "Fix the request parameters; a rejected ContinuationToken means restarting the "
            "window. Retrying the same request will not help.",
            url=url,
        )
        self.status = status
        self.detail = detail


class DitioForbidden(DitioFatalError):
    """The token is valid but has no access to the filtered project or company.

    :param url: the request URL (stored redacted).
    :param context: the filter involved, e.g. ``"ProjectId=...,CompanyId=..."``.
    :param status: 403, or 401 from a host that was asked without the token.
    """

    def __init__(self, *, url: str, context: str = "", status: int = 403) -> None:
        scope = f"filter {context}" if context else "this request (no project/company filter)"
        super().__init__(
            f"Ditio answered {status} to GET {redact_url(url)} for {scope}. The API client "
            "has no access there: grant it access in Ditio or remove the project/company "
            "from the filter.",
            url=url,
        )
        self.status = status
        self.context = context


class DitioPagingLoopError(DitioFatalError):
    """The API handed back a continuation token that was already used."""


class DitioResponseTooLarge(DitioFatalError):
    """A response body is larger than the configured limit.

    :param url: the file URL (stored redacted).
    :param limit: the limit in bytes.
    :param size: bytes announced or read when the limit was crossed.
    """

    def __init__(self, *, url: str, limit: int, size: int) -> None:
        super().__init__(
            f"{redact_url(url)} is larger than the limit of {limit} bytes "
            f"(at least {size} bytes). Raise max_file_bytes if such files are expected.",
            url=url,
        )
        self.limit = limit
        self.size = size


class DitioServerError(DitioRetryableError):
    """Ditio answered 5xx or 429, or a body that is not the documented envelope.

    :param url: the request URL (stored redacted).
    :param status: the HTTP status.
    :param detail: truncated error body or what was wrong with the body.
    :param retry_after: seconds from a Retry-After header, if sent.
    :param method: the HTTP method, for the message.
    """

    def __init__(
        self,
        *,
        url: str,
        status: int,
        detail: str = "",
        retry_after: float | None = None,
        method: str = "GET",
    ) -> None:
        wait = f" (Retry-After {retry_after:g}s)" if retry_after is not None else ""
        super().__init__(
            f"Ditio answered {status}{wait} to {method} {redact_url(url)}: "
            f"{detail or 'no details'}. "
            "This is usually transient and is retried; if it persists, check Ditio's status.",
            url=url,
            retry_after=retry_after,
        )
        self.status = status
        self.detail = detail


class DitioConnectionError(DitioRetryableError):
    """Connecting or reading timed out, or the connection was reset.

    :param url: the request URL (stored redacted).
    :param reason: the underlying error, already scrubbed.
    """

    def __init__(self, *, url: str, reason: str) -> None:
        super().__init__(
            f"Could not reach {redact_url(url)}: {reason}. Retried; if it persists, check "
            "the network path and the connect_timeout/read_timeout extras.",
            url=url,
        )
        self.reason = reason


class DitioIncompleteBody(DitioRetryableError):
    """A body ended early or broke mid-transfer.

    :param url: the file URL (stored redacted).
    :param received: bytes received before the body ended.
    :param expected: bytes announced by Content-Length, if any.
    :param reason: the underlying error or mismatch.
    """

    def __init__(self, *, url: str, received: int, expected: int | None, reason: str) -> None:
        announced = "unknown" if expected is None else str(expected)
        super().__init__(
            f"Body of {redact_url(url)} is incomplete: received {received} of {announced} "
            f"bytes ({reason}). The download is retried from the start.",
            url=url,
        )
        self.received = received
        self.expected = expected
        self.reason = reason


class DitioNotFound(DitioError):
    """The resource does not exist (404), e.g. a file deleted after it was listed.

    :param url: the request URL (stored redacted).
    """

    def __init__(self, *, url: str) -> None:
        super().__init__(
            f"Ditio answered 404 Not Found to GET {redact_url(url)}; it was probably deleted "
            "after listing and is recorded as missing.",
            url=url,
        )
        self.status = 404


class DitioRefused(DitioError):
    """A URL was not fetched because it may not receive the token (or is unsafe).

    :param url: the refused URL (stored redacted).
    :param reason: why it was refused and how to allow it.
    """

    def __init__(self, *, url: str, reason: str) -> None:
        super().__init__(f"Refused to fetch {redact_url(url)}: {reason}.", url=url)
        self.reason = reason
