from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions
import pytest
import requests
import urllib3.exceptions

from ditio_images.exceptions import (
    DitioBadRequest,
    DitioConfigError,
    DitioConnectionError,
    DitioNotFound,
    DitioRefused,
    DitioRetriesExhausted,
    DitioRetryableError,
    DitioServerError,
)
from ditio_images.retry import Outcome, RetryPolicy, parse_retry_after

NOW = datetime(2025, 3, 4, 12, 0, 0, tzinfo=UTC)
URL = "https://h.test/v1/images"

OK, RETRY, REFRESH, NOT_FOUND, FATAL = (
    Outcome.OK,
    Outcome.RETRY,
    Outcome.REFRESH,
    Outcome.NOT_FOUND,
    Outcome.FATAL,
)


def fixed(value: float) -> Any:
    return lambda: value


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Flaky:
    """Raises the given errors in turn, then returns ``"done"``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "PutObject")


class TestDelay:
    def test_doubles_from_the_base_up_to_the_cap_without_jitter(self) -> None:
        policy = RetryPolicy(jitter=0)

        delays = [policy.delay(n) for n in range(1, 10)]

        assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]

    @pytest.mark.parametrize(
        ("rand", "expected"), [(0.0, 4.0), (0.5, 3.0), (0.999, pytest.approx(2.002))]
    )
    def test_jitter_takes_off_up_to_its_fraction(self, rand: float, expected: float) -> None:
        policy = RetryPolicy(jitter=0.5)

        assert policy.delay(4, rand=fixed(rand)) == expected

    def test_full_jitter_can_reach_zero(self) -> None:
        assert RetryPolicy(jitter=1.0).delay(3, rand=fixed(0.999999)) == pytest.approx(0, abs=1e-5)

    def test_huge_retry_numbers_stay_at_the_cap(self) -> None:
        assert RetryPolicy(jitter=0).delay(10_000) == 30.0

    def test_zero_base_means_no_waiting(self) -> None:
        assert RetryPolicy(backoff_base=0).delay(5) == 0.0

    def test_rejects_retry_number_below_one(self) -> None:
        with pytest.raises(ValueError, match="retry_number"):
            RetryPolicy().delay(0)

    @pytest.mark.parametrize(
        ("retry_after", "expected"),
        [
            ("7", 7.0),
            (7, 7.0),
            ("2.5", 2.5),
            ("0", 1.0),
            ("1000", 120.0),
            (-5.0, 1.0),
            ("soon", 1.0),
            ("", 1.0),
            (None, 1.0),
            ("Tue, 04 Mar 2025 12:00:45 GMT", 45.0),
            ("Tue, 04 Mar 2025 11:00:00 GMT", 1.0),
            ("Tue, 04 Mar 2025 13:00:00 GMT", 120.0),
        ],
    )
    def test_retry_after_is_a_capped_floor_over_the_backoff(
        self, retry_after: str | float | None, expected: float
    ) -> None:
        policy = RetryPolicy(jitter=0, backoff_base=1.0)

        assert policy.delay(1, retry_after, now=NOW) == expected

    def test_backoff_wins_over_a_shorter_retry_after(self) -> None:
        policy = RetryPolicy(jitter=0, backoff_base=1.0)

        assert policy.delay(4, "3", now=NOW) == 8.0

    def test_retry_after_is_not_jittered(self) -> None:
        policy = RetryPolicy(jitter=1.0, backoff_base=0.1)

        assert policy.delay(1, "5", rand=fixed(0.9)) == 5.0

    def test_retry_after_cap_is_configurable(self) -> None:
        policy = RetryPolicy(jitter=0, retry_after_max=10)

        assert policy.delay(1, "3600") == 10.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("1.5", 1.5),
        (3, 3.0),
        (-3.0, 0.0),
        ("-3", None),
        ("nan", None),
        ("1e3", None),
        (float("inf"), None),
        (float("nan"), None),
        (True, None),
        ("", None),
        (None, None),
        ("Tue, 04 Mar 2025 12:01:00 GMT", 60.0),
        ("Tuesday, 04-Mar-25 12:01:00 GMT", 60.0),
        ("Tue, 04 Mar 2025 12:01:00", 60.0),
        ("Tue, 04 Mar 2025 11:59:00 GMT", 0.0),
        ("Tue, 99 Xyz 2025 12:01:00 GMT", None),
    ],
)
def test_parse_retry_after(value: Any, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_defaults_to_the_current_time() -> None:
    later = datetime.now(UTC) + timedelta(seconds=100)
    header = later.strftime("%a, %d %b %Y %H:%M:%S GMT")

    assert 90 <= parse_retry_after(header) <= 100  # type: ignore[operator]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, OK),
        (201, OK),
        (204, OK),
        (206, OK),
        (301, OK),
        (302, OK),
        (304, OK),
        (307, OK),
        (308, OK),
        (400, FATAL),
        (401, REFRESH),
        (403, FATAL),
        (404, NOT_FOUND),
        (405, FATAL),
        (408, RETRY),
        (409, FATAL),
        (410, FATAL),
        (413, FATAL),
        (422, FATAL),
        (429, RETRY),
        (451, FATAL),
        (500, RETRY),
        (501, FATAL),
        (502, RETRY),
        (503, RETRY),
        (504, RETRY),
        (505, FATAL),
        (507, FATAL),
        (599, FATAL),
        (100, FATAL),
        (600, FATAL),
    ],
)
def test_classify_named_statuses(status: int, expected: Outcome) -> None:
    assert RetryPolicy().classify(status) is expected


EXPECTED_OUTCOMES = {
    **{status: OK for status in range(200, 400)},
    **{status: FATAL for status in range(400, 600)},
    401: REFRESH,
    404: NOT_FOUND,
    **{status: RETRY for status in (408, 429, 500, 502, 503, 504)},
}


@pytest.mark.parametrize(("status", "expected"), sorted(EXPECTED_OUTCOMES.items()))
def test_classify_every_status_from_200_to_599(status: int, expected: Outcome) -> None:
    assert RetryPolicy().classify(status) is expected


class TestSettings:
    def test_defaults(self) -> None:
        policy = RetryPolicy()

        assert (policy.max_attempts, policy.backoff_base, policy.backoff_max) == (6, 0.5, 30.0)
        assert (policy.retry_after_max, policy.jitter) == (120.0, 0.5)
        assert policy.timeout == (10.0, 300.0)

    def test_from_extras_reads_numbers_and_numeric_strings(self) -> None:
        extras = {
            "max_attempts": "3",
            "backoff_base": 0,
            "backoff_max": "5.5",
            "retry_after_max": 60,
            "jitter": "0",
            "connect_timeout": 2,
            "read_timeout": "30",
            "token_url": "https://identity.example.test/connect/token",
        }

        policy = RetryPolicy.from_extras(extras)

        assert policy == RetryPolicy(
            max_attempts=3,
            backoff_base=0,
            backoff_max=5.5,
            retry_after_max=60,
            jitter=0,
            connect_timeout=2,
            read_timeout=30,
        )
        assert policy.timeout == (2, 30)

    @pytest.mark.parametrize("extras", [{}, None, {"max_attempts": None, "jitter": ""}])
    def test_from_extras_keeps_defaults_for_absent_keys(self, extras: Any) -> None:
        assert RetryPolicy.from_extras(extras) == RetryPolicy()

    def test_from_extras_accepts_a_whole_float_for_attempts(self) -> None:
        assert RetryPolicy.from_extras({"max_attempts": 4.0}).max_attempts == 4

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("max_attempts", 0),
            ("max_attempts", "abc"),
            ("max_attempts", 2.5),
            ("max_attempts", "2.5"),
            ("max_attempts", True),
            ("max_attempts", 1000),
            ("backoff_base", -1),
            ("backoff_max", "-0.1"),
            ("retry_after_max", [1]),
            ("jitter", 1.5),
            ("connect_timeout", 0),
            ("read_timeout", "nan"),
            ("read_timeout", "inf"),
        ],
    )
    def test_from_extras_names_the_bad_key(self, key: str, value: Any) -> None:
        with pytest.raises(DitioConfigError, match=key) as caught:
            RetryPolicy.from_extras({key: value})

        assert caught.value.field == key

    def test_direct_construction_is_validated_too(self) -> None:
        with pytest.raises(DitioConfigError, match="jitter"):
            RetryPolicy(jitter=-0.1)


class TestRun:
    policy = RetryPolicy(max_attempts=3, backoff_base=1.0, jitter=0)

    def test_returns_at_once_on_success(self) -> None:
        sleeps = Sleeps()

        assert self.policy.run(Flaky(), describe="x", sleep=sleeps) == "done"
        assert sleeps == []

    def test_retries_transient_errors_then_succeeds(self, caplog: pytest.LogCaptureFixture) -> None:
        operation = Flaky(
            DitioServerError(url=URL, status=503),
            DitioConnectionError(url=URL, reason="reset"),
        )
        sleeps = Sleeps()

        with caplog.at_level(logging.WARNING, logger="ditio_images.retry"):
            result = self.policy.run(operation, describe="GET page 1", sleep=sleeps)

        assert result == "done"
        assert operation.calls == 3
        assert sleeps == [1.0, 2.0]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert [r.args[1:3] for r in warnings] == [(1, 3), (2, 3)]  # type: ignore[index]
        assert "GET page 1 failed (attempt 1/3)" in warnings[0].getMessage()
        assert "retrying in 1.0s" in warnings[0].getMessage()

    def test_honours_retry_after_of_the_error(self) -> None:
        operation = Flaky(DitioServerError(url=URL, status=429, retry_after=9.0))
        sleeps = Sleeps()

        self.policy.run(operation, describe="x", sleep=sleeps)

        assert sleeps == [9.0]

    def test_raises_retryable_error_chained_to_the_last_when_exhausted(self) -> None:
        last = DitioServerError(url=URL, status=502)
        operation = Flaky(
            DitioServerError(url=URL, status=500), DitioServerError(url=URL, status=503), last
        )
        sleeps = Sleeps()

        with pytest.raises(DitioRetryableError) as caught:
            self.policy.run(operation, describe="GET page 7", sleep=sleeps)

        assert type(caught.value) is DitioRetriesExhausted
        assert caught.value.__cause__ is last
        assert "GET page 7 failed 3 times" in str(caught.value)
        assert "Airflow's task retries take over" in str(caught.value)
        assert "502" in str(caught.value)
        assert operation.calls == 3
        assert sleeps == [1.0, 2.0]

    def test_logs_one_error_when_giving_up(self, caplog: pytest.LogCaptureFixture) -> None:
        operation = Flaky(*[DitioServerError(url=URL, status=500)] * 3)

        with (
            caplog.at_level(logging.WARNING, logger="ditio_images.retry"),
            pytest.raises(DitioRetryableError),
        ):
            self.policy.run(operation, describe="x", sleep=Sleeps())

        assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING", "ERROR"]

    def test_single_attempt_never_sleeps(self) -> None:
        sleeps = Sleeps()
        policy = RetryPolicy(max_attempts=1)

        with pytest.raises(DitioRetryableError):
            policy.run(Flaky(DitioServerError(url=URL, status=500)), describe="x", sleep=sleeps)

        assert sleeps == []

    @pytest.mark.parametrize(
        "error",
        [
            DitioBadRequest(url=URL, detail="ArgumentIsNull"),
            DitioNotFound(url=URL),
            DitioRefused(url=URL, reason="untrusted"),
            ValueError("a bug"),
            requests.exceptions.InvalidURL("bad"),
            client_error("AccessDenied", 403),
            client_error("NoSuchBucket", 404),
        ],
    )
    def test_other_errors_pass_through_at_once(self, error: Exception) -> None:
        operation = Flaky(error)
        sleeps = Sleeps()

        with pytest.raises(type(error)) as caught:
            self.policy.run(operation, describe="x", sleep=sleeps)

        assert caught.value is error
        assert operation.calls == 1
        assert sleeps == []

    @pytest.mark.parametrize(
        "error",
        [
            requests.exceptions.ConnectionError("refused"),
            requests.exceptions.ReadTimeout("slow"),
            requests.exceptions.ChunkedEncodingError("broken"),
            urllib3.exceptions.ProtocolError("reset"),
            ConnectionResetError("reset"),
            TimeoutError("slow"),
            botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            botocore.exceptions.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
            botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
            client_error("SlowDown", 503),
            client_error("Throttling", 400),
            client_error("RequestTimeout", 400),
            client_error("InternalError", 500),
            client_error("Whatever", 502),
        ],
    )
    def test_third_party_transient_errors_are_retried(self, error: Exception) -> None:
        operation = Flaky(error)
        sleeps = Sleeps()

        assert self.policy.run(operation, describe="x", sleep=sleeps) == "done"
        assert sleeps == [1.0]

    def test_exhausted_chain_is_scrubbed_of_signed_urls(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        policy = RetryPolicy(max_attempts=2, backoff_base=0)
        message = "Max retries exceeded with url: /blob/1?sv=1&sig=S3CR3T"
        operation = Flaky(*[requests.exceptions.ConnectionError(message) for _ in range(2)])

        with pytest.raises(DitioRetryableError) as caught:
            policy.run(operation, describe="download 1", sleep=Sleeps())

        assert "S3CR3T" not in str(caught.value)
        assert "S3CR3T" not in str(caught.value.__cause__)
        assert all("S3CR3T" not in record.getMessage() for record in caplog.records)

    def test_uses_the_given_logger(self, caplog: pytest.LogCaptureFixture) -> None:
        log = logging.getLogger("ditio_images.test")

        with caplog.at_level(logging.WARNING, logger="ditio_images.test"):
            self.policy.run(Flaky(TimeoutError("slow")), describe="x", sleep=Sleeps(), log=log)

        assert [r.name for r in caplog.records] == ["ditio_images.test"]

    def test_nested_policies_do_not_multiply_attempts(self) -> None:
        inner = Flaky(*[DitioServerError(url=URL, status=500)] * 10)
        outer_calls = []

        def outer_operation() -> str:
            outer_calls.append(1)
            return self.policy.run(inner, describe="inner", sleep=Sleeps())

        with pytest.raises(DitioRetriesExhausted, match="inner failed 3 times"):
            self.policy.run(outer_operation, describe="outer", sleep=Sleeps())

        assert len(outer_calls) == 1
        assert inner.calls == 3


def test_a_capped_retry_after_is_said_in_the_log(caplog):
    from ditio_images.exceptions import DitioServerError

    policy = RetryPolicy(max_attempts=2, backoff_base=0, jitter=0, retry_after_max=5)
    calls = iter([DitioServerError(url="http://127.0.0.1/x", status=429, retry_after=600.0)])

    def operation():
        error = next(calls, None)
        if error:
            raise error
        return "ok"

    with caplog.at_level("WARNING"):
        assert policy.run(operation, describe="list", sleep=lambda _: None) == "ok"
    assert "asked for 600s; capped" in caplog.text and "retrying in 5.0s" in caplog.text
