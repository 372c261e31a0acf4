from __future__ import annotations

import pickle

import pytest

from ditio_images.exceptions import (
    DitioAuthError,
    DitioBadRequest,
    DitioConfigError,
    DitioConnectionError,
    DitioError,
    DitioFatalError,
    DitioForbidden,
    DitioIncompleteBody,
    DitioNotFound,
    DitioPagingLoopError,
    DitioRefused,
    DitioResponseTooLarge,
    DitioRetriesExhausted,
    DitioRetryableError,
    DitioServerError,
)

SIGNED = "https://blob.test/f/1?sv=2024&sig=S3CR3T"


@pytest.mark.parametrize(
    ("error", "branch"),
    [
        (DitioConfigError("bad", field="host"), DitioFatalError),
        (DitioAuthError("refused"), DitioFatalError),
        (DitioBadRequest(url=SIGNED, detail="ArgumentIsNull: x"), DitioFatalError),
        (DitioForbidden(url=SIGNED, context="ProjectId=1"), DitioFatalError),
        (DitioPagingLoopError("loop"), DitioFatalError),
        (DitioResponseTooLarge(url=SIGNED, limit=10, size=11), DitioFatalError),
        (DitioServerError(url=SIGNED, status=503), DitioRetryableError),
        (DitioConnectionError(url=SIGNED, reason="reset"), DitioRetryableError),
        (
            DitioIncompleteBody(url=SIGNED, received=1, expected=2, reason="eof"),
            DitioRetryableError,
        ),
        (DitioRetriesExhausted("budget spent", url=SIGNED), DitioRetryableError),
    ],
)
def test_each_error_sits_in_its_branch(error: DitioError, branch: type[DitioError]) -> None:
    other = DitioRetryableError if branch is DitioFatalError else DitioFatalError

    assert isinstance(error, branch)
    assert not isinstance(error, other)
    assert isinstance(error, DitioError)


@pytest.mark.parametrize(
    "error", [DitioNotFound(url=SIGNED), DitioRefused(url=SIGNED, reason="untrusted host")]
)
def test_not_found_and_refused_are_neither_fatal_nor_retryable(error: DitioError) -> None:
    assert not isinstance(error, DitioFatalError | DitioRetryableError)


@pytest.mark.parametrize(
    "error",
    [
        DitioBadRequest(url=SIGNED, detail="ArgumentIsNull: ModifiedSince"),
        DitioForbidden(url=SIGNED, context="ProjectId=65a"),
        DitioResponseTooLarge(url=SIGNED, limit=10, size=11),
        DitioServerError(url=SIGNED, status=503, retry_after=3),
        DitioConnectionError(url=SIGNED, reason="timed out"),
        DitioIncompleteBody(url=SIGNED, received=1, expected=2, reason="eof"),
        DitioNotFound(url=SIGNED),
        DitioRefused(url=SIGNED, reason="untrusted host"),
    ],
)
def test_errors_carry_only_redacted_urls(error: DitioError) -> None:
    assert "S3CR3T" not in str(error)
    assert "S3CR3T" not in repr(error)
    assert error.url == "https://blob.test/f/1?sv=REDACTED&sig=REDACTED"
    assert error.url in str(error)


def test_bad_request_names_status_detail_and_fix() -> None:
    error = DitioBadRequest(url="https://h.test/v1/images", detail="ArgumentIsNull: ModifiedSince")

    assert (error.status, error.detail) == (400, "ArgumentIsNull: ModifiedSince")
    assert "400" in str(error)
    assert "ArgumentIsNull: ModifiedSince" in str(error)
    assert "Fix the request parameters" in str(error)


def test_forbidden_names_the_filter() -> None:
    error = DitioForbidden(url="https://h.test/v1/images", context="ProjectId=65a,CompanyId=7")

    assert "403" in str(error)
    assert "ProjectId=65a,CompanyId=7" in str(error)
    assert "grant it access" in str(error)


def test_server_error_keeps_retry_after() -> None:
    error = DitioServerError(url="https://h.test/v1/images", status=429, retry_after=7.0)

    assert error.retry_after == 7.0
    assert "429" in str(error)
    assert "Retry-After 7s" in str(error)


def test_retryable_errors_default_to_no_retry_after() -> None:
    assert DitioConnectionError(url="https://h.test", reason="reset").retry_after is None


def test_config_error_names_the_field() -> None:
    error = DitioConfigError("max_attempts=0 is invalid", field="max_attempts")

    assert error.field == "max_attempts"
    assert "max_attempts" in str(error)


@pytest.mark.parametrize(
    "error",
    [
        DitioBadRequest(url=SIGNED, detail="x", status=409),
        DitioServerError(url=SIGNED, status=503, retry_after=2.5),
        DitioIncompleteBody(url=SIGNED, received=1, expected=None, reason="eof"),
        DitioConfigError("bad", field="host"),
        DitioRefused(url=SIGNED, reason="why"),
    ],
)
def test_errors_survive_pickling(error: DitioError) -> None:
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
