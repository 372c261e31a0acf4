from __future__ import annotations

import pytest
import requests

from ditio_images.redact import (
    redact_text,
    redact_url,
    scrub_exception,
    scrub_text,
    truncate_body,
    url_secrets,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://core-api.example.test/core/api/file/1",
            "https://core-api.example.test/core/api/file/1",
        ),
        ("https://user:pw@host.test/a", "https://host.test/a"),
        ("https://user:p@ss@host.test:8443/a", "https://host.test:8443/a"),
        (
            "https://h.test/a?ProjectId=5&ChunkLimit=10",
            "https://h.test/a?ProjectId=5&ChunkLimit=10",
        ),
        (
            "https://h.test/a?ContinuationToken=abc%3D&x=1",
            "https://h.test/a?ContinuationToken=REDACTED&x=1",
        ),
        ("https://h.test/a?continuationtoken=abc", "https://h.test/a?continuationtoken=REDACTED"),
        (
            "https://blob.test/f?sv=2024&se=2030&sp=r&sig=S3CR3T",
            "https://blob.test/f?sv=REDACTED&se=REDACTED&sp=REDACTED&sig=REDACTED",
        ),
        (
            "https://b.test/f?skoid=o&Signature=s&Key=k",
            "https://b.test/f?skoid=REDACTED&Signature=REDACTED&Key=REDACTED",
        ),
        (
            "https://s3.test/k?X-Amz-Signature=s&X-Amz-Credential=c&X-Amz-Security-Token=t",
            "https://s3.test/k?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED"
            "&X-Amz-Security-Token=REDACTED",
        ),
        (
            "https://s3.test/k?AWSAccessKeyId=AKIA&Expires=1",
            "https://s3.test/k?AWSAccessKeyId=REDACTED&Expires=1",
        ),
        ("https://i.test/cb?code=abc&state=1", "https://i.test/cb?code=REDACTED&state=1"),
        (
            "https://i.test/t?client_secret=x&password=y&token=z&access_token=w",
            "https://i.test/t?client_secret=REDACTED&password=REDACTED&token=REDACTED"
            "&access_token=REDACTED",
        ),
        ("https://i.test/t?SIG=a&flag", "https://i.test/t?SIG=REDACTED&flag"),
        ("https://i.test/t#access_token=abc&x=1", "https://i.test/t#access_token=REDACTED&x=1"),
        ("https://i.test/t?x%5Fsig=1&sig%20=2", "https://i.test/t?x%5Fsig=1&sig%20=REDACTED"),
        ("http://127.0.0.1:8080/reporting/v1/images", "http://127.0.0.1:8080/reporting/v1/images"),
        ("https://h.test/a\r\nInjected: yes", "https://h.test/a%0D%0AInjected: yes"),
        ("", ""),
    ],
)
def test_redact_url_hides_credentials(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "garbage",
    ["http://[::1", "::::", "http://h.test:notaport/x?sig=1", "%%%", "\x00\x01", 12345, None, b"x"],
)
def test_redact_url_never_raises_on_garbage(garbage: object) -> None:
    result = redact_url(garbage)  # type: ignore[arg-type]

    assert isinstance(result, str)
    assert len(result) <= 300


def test_redact_url_scrubs_unparseable_url_as_text() -> None:
    assert redact_url("http://[::1/x?sig=SECRET") == "http://[::1/x?sig=REDACTED"


def test_redact_url_truncates_to_300_characters() -> None:
    url = "https://h.test/" + "a" * 1000

    result = redact_url(url)

    assert len(result) == 300
    assert result.endswith("...")


def test_redact_url_redacts_before_truncating() -> None:
    url = "https://h.test/" + "a" * 250 + "?sig=" + "S" * 100

    assert "S" not in redact_url(url)


def test_truncate_body_collapses_whitespace_and_bounds_length() -> None:
    assert truncate_body("  ArgumentIsNull:\n  value  ") == "ArgumentIsNull: value"
    assert truncate_body(b"\xffok") == "\ufffdok"
    assert truncate_body("x" * 1000) == "x" * 297 + "..."
    assert len(truncate_body("y" * 1000, limit=50)) == 50


def test_redact_text_masks_each_secret_and_its_encoded_forms() -> None:
    text = "secret=a+b/c token=tok-1 encoded=a%2Bb%2Fc plus=a%2Bb%2Fc"

    result = redact_text(text, ["a+b/c", "tok-1", ""])

    assert result == "secret=*** token=*** encoded=*** plus=***"


def test_redact_text_masks_longer_secret_first() -> None:
    assert redact_text("abcdef", ["abc", "abcdef"]) == "***"


def test_redact_text_without_secrets_changes_nothing() -> None:
    assert redact_text("nothing here", []) == "nothing here"


def test_scrub_text_hides_urls_inside_free_text() -> None:
    text = (
        "HTTPSConnectionPool(host='b.test'): Max retries exceeded with url: /f?sv=1&sig=SECRET "
        "(https://user:pw@h.test/x) Authorization: Bearer eyJ.abc-def"
    )

    result = scrub_text(text)

    assert "SECRET" not in result
    assert "pw" not in result
    assert "eyJ.abc-def" not in result
    assert "sig=REDACTED" in result
    assert "Bearer ***" in result


def test_scrub_exception_rewrites_the_whole_chain() -> None:
    inner = ValueError("GET /f?sig=SECRET failed")
    outer = requests.exceptions.ConnectionError(inner)
    try:
        try:
            raise inner
        except ValueError as err:
            raise outer from err
    except requests.exceptions.ConnectionError as err:
        caught = err

    scrub_exception(caught)

    assert "SECRET" not in str(caught)
    assert "SECRET" not in str(caught.__cause__)


def test_url_secrets_lists_sensitive_values_raw_and_decoded() -> None:
    url = (
        "https://b.test/f?sv=2024&sp=r&sig=abcd%2Befgh&ProjectId=12345678"
        "&ContinuationToken=c1c2c3c4"
    )

    assert sorted(url_secrets(url)) == ["abcd%2Befgh", "abcd+efgh", "c1c2c3c4"]
    assert url_secrets("http://[::1") == []
