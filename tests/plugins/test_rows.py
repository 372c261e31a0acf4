from __future__ import annotations

import pytest

from ditio_images.rows import file_entry, reject_reason, row_identity

GOOD = {
    "id": "6610f1a3c5000000000000aa",
    "fileSize": 10,
    "downloadUrl": "https://core-api.ditio.dev/core/api/file/6610f1a3c5000000000000aa",
    "thumbnailUrl": None,
    "collectionRef": "Post",
    "idRef": "6610e02a00000000000000bb",
    "latitude": 59.9,
    "roadReference": None,
    "somethingNew": {"kept": True},
}


def test_accepts_a_documented_row_with_unknown_fields():
    assert reject_reason(GOOD) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "no 'id'"),
        ({"id": "../../x"}, "plain identifier"),
        ({"id": "a/b"}, "plain identifier"),
        ({"fileSize": "10"}, "fileSize"),
        ({"fileSize": True}, "fileSize"),
        ({"fileSize": -1}, "negative"),
        ({"latitude": "59.9"}, "latitude"),
        ({"downloadUrl": 5}, "downloadUrl"),
        ({"roadReference": "E6"}, "roadReference"),
        ({"collectionRef": ["Post"]}, "collectionRef"),
    ],
)
def test_rejects_rows_with_bad_ids_or_wrong_types(change, reason):
    assert reason in reject_reason({**GOOD, **change})


def test_rejects_a_row_without_id_and_a_non_object():
    assert "no 'id'" in reject_reason({k: v for k, v in GOOD.items() if k != "id"})
    assert "not an object" in reject_reason(["id"])


def test_identity_is_id_collection_and_parent():
    other_parent = {**GOOD, "idRef": "other"}
    assert row_identity(GOOD) != row_identity(other_parent)
    assert row_identity(GOOD) == row_identity(dict(GOOD))


def test_file_entry_lists_only_requested_variants_with_urls():
    entry = file_entry(GOOD, ("original", "thumbnail"))
    assert entry == {"id": GOOD["id"], "size": 10, "urls": {"original": GOOD["downloadUrl"]}}
