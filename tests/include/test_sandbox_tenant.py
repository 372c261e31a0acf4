from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from ditio_sandbox import Tenant, sniff_content_type
from ditio_sandbox.files import HOSTILE_NAMES, Body
from ditio_sandbox.images import pad_jpeg, pad_png, tiny_jpeg
from ditio_sandbox.model import format_millis, parse_datetime

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "sample-photos"
INCLUDE = Path(__file__).resolve().parents[2] / "include"
DIMENSIONS = (0, 128, 640, 1980)
# Digests in a fresh interpreter, walking the files in reverse so no call order is shared.
DIGEST_SCRIPT = """
import hashlib, json, sys
from ditio_sandbox import Tenant
tenant = Tenant(seed=int(sys.argv[1]))
digests = {}
for file_id in reversed(sys.argv[2:]):
    spec = tenant.file_spec(file_id)
    for dimension in (1980, 640, 128):
        data = tenant.catalog.resized(spec, dimension)[0]
        digests[f"{file_id}:{dimension}"] = hashlib.sha256(data).hexdigest()
    original = tenant.original_bytes(file_id)
    digests[f"{file_id}:0"] = hashlib.sha256(original).hexdigest()
print(json.dumps(digests))
"""
ROW_FIELDS = [
    "id",
    "fileName",
    "fileNameOriginal",
    "fileType",
    "fileSize",
    "downloadUrl",
    "thumbnailUrl",
    "mediumUrl",
    "largeUrl",
    "source",
    "originDescription",
    "collectionRef",
    "idRef",
    "companyId",
    "projectCompanyId",
    "projectId",
    "projectNumber",
    "projectName",
    "taskId",
    "taskName",
    "activityId",
    "activityNumber",
    "createdByUserId",
    "createdByUserName",
    "createdDateTime",
    "parentModifiedDateTime",
    "latitude",
    "longitude",
    "accuracy",
    "roadReference",
    "userSecurityLevel",
]
HEX24 = re.compile(r"^[0-9a-f]{24}$")


def test_same_seed_gives_the_same_rows() -> None:
    assert Tenant(seed=11).rows() == Tenant(seed=11).rows()


def test_different_seeds_give_different_rows() -> None:
    assert Tenant(seed=11).rows() != Tenant(seed=12).rows()


def sample_file_ids(tenant: Tenant) -> list[str]:
    """The first JPEGs plus the first PNG, so both generators are covered."""
    file_ids = tenant.file_ids()
    png = next(f for f in file_ids if tenant.file_spec(f).content_type == "image/png")
    return [*file_ids[:5], png]


def file_digests(tenant: Tenant, file_ids: list[str]) -> dict[str, str]:
    digests = {}
    for file_id in file_ids:
        spec = tenant.file_spec(file_id)
        for dimension in DIMENSIONS:
            data = (
                tenant.catalog.resized(spec, dimension)[0]
                if dimension
                else tenant.original_bytes(file_id)
            )
            digests[f"{file_id}:{dimension}"] = hashlib.sha256(data).hexdigest()
    return digests


def test_same_seed_gives_the_same_bytes_in_another_process() -> None:
    tenant = Tenant(seed=7)
    file_ids = sample_file_ids(tenant)
    env = {**os.environ, "PYTHONPATH": str(INCLUDE), "PYTHONHASHSEED": "1234"}

    child = subprocess.run(
        [sys.executable, "-c", DIGEST_SCRIPT, "7", *file_ids],
        capture_output=True,
        env=env,
        text=True,
        timeout=120,
        check=True,
    )

    assert json.loads(child.stdout) == file_digests(tenant, file_ids)


def test_bytes_stay_the_same_after_the_cache_evicts_them() -> None:
    tenant = Tenant(seed=7, cache_bytes=1)
    file_ids = sample_file_ids(tenant)

    first = file_digests(tenant, file_ids)
    assert len(tenant.catalog._cache._items) == 1
    again = file_digests(tenant, file_ids[::-1])

    assert again == first
    assert first == file_digests(Tenant(seed=7), file_ids)


def test_different_seeds_give_different_pixels() -> None:
    first, second = Tenant(seed=7), Tenant(seed=8)
    pairs = list(zip(first.file_ids()[:6], second.file_ids()[:6], strict=True))

    for first_id, second_id in pairs:
        assert first.original_bytes(first_id) != second.original_bytes(second_id)
        first_thumb = first.catalog.resized(first.file_spec(first_id), 128)[0]
        second_thumb = second.catalog.resized(second.file_spec(second_id), 128)[0]
        assert first_thumb != second_thumb


def test_rows_carry_every_documented_field(tenant: Tenant) -> None:
    for row in tenant.rows():
        assert list(row) == ROW_FIELDS
        assert HEX24.match(row["id"]) and HEX24.match(row["idRef"])


def test_urls_are_absolute_on_the_core_file_endpoint(tenant: Tenant) -> None:
    row = tenant.rows(core_url="http://127.0.0.1:9/core")[0]
    assert row["downloadUrl"] == f"http://127.0.0.1:9/core/api/file/{row['id']}"
    assert row["thumbnailUrl"] == row["downloadUrl"] + "?MaxDimension=128"
    assert row["mediumUrl"] == row["downloadUrl"] + "?MaxDimension=640"
    assert row["largeUrl"] == row["downloadUrl"] + "?MaxDimension=1980"


def test_all_sources_appear_with_their_collections(tenant: Tenant) -> None:
    pairs = {(row["source"], row["collectionRef"]) for row in tenant.rows()}
    assert pairs == {("feed", "Post"), ("alert", "Alert"), ("checklist", "ChecklistSubmission")}


def test_parents_have_one_to_four_images(tenant: Tenant) -> None:
    per_parent = Counter((row["collectionRef"], row["idRef"]) for row in tenant.rows())
    assert set(per_parent.values()) <= {1, 2, 3, 4}
    assert max(per_parent.values()) > 1


def test_some_files_are_shared_by_two_parents(tenant: Tenant) -> None:
    parents_per_file = Counter(row["id"] for row in tenant.rows())
    assert any(count >= 2 for count in parents_per_file.values())
    assert len({(row["id"], row["idRef"]) for row in tenant.rows()}) == len(tenant.rows())


def test_timestamps_include_hour_boundaries_and_ties(tenant: Tenant) -> None:
    stamps = Counter(
        (row["source"], row["parentModifiedDateTime"])
        for row in {row["idRef"]: row for row in tenant.rows()}.values()
    )
    assert any(count > 1 for count in stamps.values())
    modified = {stamp for _, stamp in stamps}
    assert {"2026-04-12T07:00:00.000Z", "2026-04-12T06:59:59.999Z"} <= modified


def test_locations_and_road_references_vary(tenant: Tenant) -> None:
    rows = tenant.rows()
    assert any(row["latitude"] is None and row["accuracy"] is None for row in rows)
    assert any(row["latitude"] is not None and row["roadReference"] is None for row in rows)
    roads = [row["roadReference"] for row in rows if row["roadReference"]]
    assert roads and set(roads[0]) == {
        "provider",
        "countryCode",
        "referenceText",
        "roadCategory",
        "roadNumber",
        "section",
        "meterFromStart",
        "distanceFromCoordinateMeters",
    }


def test_users_have_norwegian_names(tenant: Tenant) -> None:
    names = {row["createdByUserName"] for row in tenant.rows()}
    assert any(set(name) & set("æøåÆØÅ") for name in names)


def test_file_size_and_type_match_the_bytes(tenant: Tenant) -> None:
    for file_id in tenant.file_ids()[:12]:
        spec = tenant.file_spec(file_id)
        data = tenant.original_bytes(file_id)
        assert len(data) == spec.size
        assert sniff_content_type(data[:16]) == spec.content_type
        Image.open(io.BytesIO(data)).verify()


def test_png_files_exist_and_decode(tenant: Tenant) -> None:
    pngs = [row for row in tenant.rows() if row["fileType"] == "image/png"]
    assert pngs
    data = tenant.original_bytes(pngs[0]["id"])
    assert Image.open(io.BytesIO(data)).format == "PNG"


def test_rows_between_is_inclusive_at_start_and_exclusive_at_end(tenant: Tenant) -> None:
    rows = tenant.rows_between("2026-04-12T07:00:00Z", "2026-04-12T08:00:00Z")
    stamps = {row["parentModifiedDateTime"] for row in rows}
    assert "2026-04-12T07:00:00.000Z" in stamps
    assert "2026-04-12T08:00:00.000Z" not in stamps
    assert "2026-04-12T07:59:59.999Z" in stamps


def test_rows_between_with_filters_narrows(tenant: Tenant) -> None:
    project = tenant.projects[0].project_id
    rows = tenant.rows_between("2026-04-12T06:00:00Z", None, project_id=project)
    assert rows and {row["projectId"] for row in rows} == {project}


def test_file_bytes_option_makes_every_original_that_size() -> None:
    tenant = Tenant(seed=3, hours=1, parents_per_hour=4, file_bytes=5000)
    for file_id in tenant.file_ids():
        data = tenant.original_bytes(file_id)
        assert len(data) == 5000 and data.startswith(b"\xff\xd8\xff")
        assert file_id.encode() in data[:64]


def test_huge_files_are_streamed_in_bounded_chunks() -> None:
    first = Tenant(seed=3, hours=1, parents_per_hour=2).file_ids()[0]
    tenant = Tenant(seed=3, hours=1, parents_per_hour=2, huge_files={first: 2 * 1024**3})
    assert tenant.file_spec(first).size == 2 * 1024**3
    chunks = tenant.iter_original(first)
    head = next(chunks)
    assert head.startswith(b"\xff\xd8\xff") and len(head) <= 64 * 1024
    assert max(len(next(chunks)) for _ in range(10)) <= 64 * 1024


def test_body_ranges_concatenate_to_the_whole() -> None:
    body = Body("image/jpeg", 300_000, b"head-bytes", b"0123456789")
    whole = b"".join(body.iter_range())
    assert len(whole) == 300_000
    assert b"".join(body.iter_range(5, 200_003)) == whole[5:200_003]


def test_large_tenants_generate_quickly_without_bytes() -> None:
    tenant = Tenant(
        hours=1, parents_per_hour=20_000, images_per_parent=(1, 1), shared_files=0, file_bytes=1000
    )
    assert len(tenant.file_ids()) == 20_000
    assert len(tenant.catalog._cache._items) == 0


def test_hostile_names_appear_when_enabled() -> None:
    rows = Tenant(seed=7, hostile_names=True).rows()
    names = {row["fileName"] for row in rows} | {row["fileNameOriginal"] for row in rows}
    assert names & set(HOSTILE_NAMES)
    assert not any(row["fileName"] in HOSTILE_NAMES for row in Tenant(seed=7).rows())


def test_bad_rows_are_counted_and_kept_apart() -> None:
    tenant = Tenant(seed=7, bad_rows=True)
    bad = tenant.bad_rows_between("2026-04-12T06:00:00Z")
    assert tenant.bad_row_count("2026-04-12T06:00:00Z") == len(bad) > 0
    assert len(tenant.rows()) == len(Tenant(seed=7).rows())


def test_foreign_host_moves_some_files_to_another_loopback_host() -> None:
    tenant = Tenant(seed=7, foreign_host="127.0.0.2:8123")
    foreign = tenant.foreign_file_ids()
    assert foreign
    rows = tenant.rows(core_url="http://127.0.0.1:1/core")
    for row in rows:
        expected = (
            "http://127.0.0.2:8123/core" if row["id"] in foreign else "http://127.0.0.1:1/core"
        )
        assert row["downloadUrl"] == f"{expected}/api/file/{row['id']}"


def test_non_loopback_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Tenant(foreign_host="10.0.0.1:80")
    with pytest.raises(ValueError, match="loopback"):
        Tenant(core_url="http://192.0.2.1/core")


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="sample photos not available")
def test_photos_dir_serves_real_photos_typed_by_their_bytes() -> None:
    tenant = Tenant(seed=7, photos_dir=PHOTOS)
    by_name = {row["fileNameOriginal"]: row for row in tenant.rows()}
    heic = by_name["mobile_iphone_13_pro_max.HEIC"]
    assert heic["fileType"] == "image/heic"
    assert heic["fileSize"] == (PHOTOS / "mobile_iphone_13_pro_max.HEIC").stat().st_size
    assert (
        tenant.original_bytes(heic["id"]) == (PHOTOS / "mobile_iphone_13_pro_max.HEIC").read_bytes()
    )
    assert by_name["gps_DSCN0010.jpg"]["latitude"] == pytest.approx(43.467448, abs=1e-4)


@pytest.mark.parametrize("size", [len(tiny_jpeg()) + 4, len(tiny_jpeg()) + 70_000, 200_000])
def test_jpeg_padding_is_exact_and_decodable(size: int) -> None:
    padded = pad_jpeg(tiny_jpeg(), size, b"pad")
    assert len(padded) == size
    Image.open(io.BytesIO(padded)).load()


def test_png_padding_is_exact_and_decodable() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    padded = pad_png(buffer.getvalue(), 5000, b"pad")
    assert len(padded) == 5000
    Image.open(io.BytesIO(padded)).load()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0rest", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\nrest", "image/png"),
        (b"\x00\x00\x00\x28ftypheic\x00\x00", "image/heic"),
        (b"GIF89a....", "image/gif"),
        (b"<html>", "application/octet-stream"),
    ],
)
def test_content_type_comes_from_magic_numbers(head: bytes, expected: str) -> None:
    assert sniff_content_type(head) == expected


def test_datetimes_round_trip_with_milliseconds() -> None:
    millis = parse_datetime("2026-04-12T07:00:00.001+00:00")
    assert format_millis(millis) == "2026-04-12T07:00:00.001Z"


def test_huge_files_must_name_existing_files() -> None:
    with pytest.raises(ValueError, match="unknown file ids"):
        Tenant(hours=1, parents_per_hour=1, huge_files={"f" * 24: 10})
