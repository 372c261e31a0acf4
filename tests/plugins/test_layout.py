from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ditio_images.exceptions import DitioConfigError
from ditio_images.layout import Layout, check_variants, extension_for, is_file_id, normalize_prefix

START = datetime(2026, 4, 12, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        ("", ""),
        ("/", ""),
        ("ditio", "ditio/"),
        ("/a/b/", "a/b/"),
        ("x=1/y_2", "x=1/y_2/"),
    ],
)
def test_normalizes_valid_prefixes(raw, expected):
    assert normalize_prefix(raw) == expected


@pytest.mark.parametrize(
    "raw", ["../x", "a/../b", "a//b", "a/./b", "a\\b", "a b", "é", "a/\nb", "..", "a/%2e%2e"]
)
def test_rejects_prefixes_that_could_escape_or_confuse(raw):
    with pytest.raises(DitioConfigError, match="prefix"):
        normalize_prefix(raw)


@pytest.mark.parametrize("value", ["6610f1a3c5000000000000aa", "a", "A_b-9", "x" * 128])
def test_accepts_plain_identifiers(value):
    assert is_file_id(value)


@pytest.mark.parametrize(
    "value",
    ["", "../../x", "a/b", "a\\b", ".hidden", "-x", "x" * 129, "a b", "ä", None, 12, "a\x00"],
)
def test_refuses_anything_else_as_file_id(value):
    assert not is_file_id(value)


def test_image_keys_use_only_the_id_variant_and_content_type():
    layout = Layout.create("bucket", "ditio/prod")
    key = layout.image_key("6610f1a3c5000000000000aa", "original", "image/jpeg; charset=x")
    assert key == "ditio/prod/images/6610f1a3c5000000000000aa/original.jpg"
    assert layout.parse_image_key(key) == ("6610f1a3c5000000000000aa", "original")
    with pytest.raises(ValueError):
        layout.image_key("../../x", "original", "image/jpeg")
    with pytest.raises(ValueError):
        layout.image_key("abc", "../evil", "image/jpeg")


@pytest.mark.parametrize(
    ("content_type", "ext"),
    [("image/jpeg", ".jpg"), ("IMAGE/PNG", ".png"), ("image/heic", ".heic"), ("text/html", ".bin")],
)
def test_extension_comes_from_content_type(content_type, ext):
    assert extension_for(content_type) == ext


def test_partitions_come_from_the_interval_start_in_utc():
    layout = Layout.create("b", "")
    oslo = timezone(timedelta(hours=2))
    assert layout.manifest_key(START) == "manifests/dt=2026-04-12/hour=06/images.jsonl"
    assert layout.manifest_key(START.astimezone(oslo)) == layout.manifest_key(START)
    assert layout.rejects_key(START) == "rejects/dt=2026-04-12/hour=06/rejects.jsonl"
    assert layout.manifest_key(START, gzip=True).endswith(".jsonl.gz")


def test_missing_bucket_says_how_to_configure_it():
    with pytest.raises(DitioConfigError, match="ditio_images_bucket"):
        Layout.create("", None)


def test_variants_are_checked_and_ordered():
    assert check_variants(["thumbnail", "original"]) == ("original", "thumbnail")
    assert check_variants("medium") == ("medium",)
    with pytest.raises(DitioConfigError, match="Unknown variants"):
        check_variants(["original", "huge"])
    with pytest.raises(DitioConfigError):
        check_variants([])
