from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pytest
import requests
from PIL import Image

from ditio_sandbox import Sandbox, Tenant

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "sample-photos"
TIMEOUT = 10


def test_originals_match_the_tenant_bytes_and_row_sizes(api, tenant: Tenant) -> None:
    for row in tenant.rows():
        response = api.get(row["downloadUrl"])
        assert response.status_code == 200
        assert response.content == tenant.original_bytes(row["id"])
        assert len(response.content) == row["fileSize"]
        assert response.headers["Content-Length"] == str(row["fileSize"])
        assert response.headers["Content-Type"] == row["fileType"]
        assert response.headers["Cache-Control"] == "public, max-age=1209600"


@pytest.mark.parametrize("field", ["thumbnailUrl", "mediumUrl", "largeUrl"])
def test_resizes_are_decodable_and_fit_their_dimension(api, tenant: Tenant, field: str) -> None:
    limit = {"thumbnailUrl": 128, "mediumUrl": 640, "largeUrl": 1980}[field]
    for row in tenant.rows()[:8]:
        response = api.get(row[field])
        assert response.status_code == 200
        image = Image.open(io.BytesIO(response.content))
        image.load()
        assert max(image.size) <= limit
        assert response.headers["Content-Type"] == Image.MIME[image.format]
        assert response.headers["Cache-Control"] == "public, max-age=1209600"


def test_png_resizes_stay_png(api, tenant: Tenant) -> None:
    row = next(row for row in tenant.rows() if row["fileType"] == "image/png")
    response = api.get(row["thumbnailUrl"])
    assert response.headers["Content-Type"] == "image/png"


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="sample photos not available")
def test_real_photos_heic_and_damaged_files_are_served(make_api) -> None:
    tenant = Tenant(seed=7, photos_dir=PHOTOS)
    with Sandbox(tenant) as sandbox:
        api = make_api(sandbox)
        for name in (
            "mobile_iphone_13_pro_max.HEIC",
            "corrupted.jpg",
            "orientation_portrait_6.jpg",
        ):
            row = next(row for row in tenant.rows() if row["fileNameOriginal"] == name)
            original = api.get(row["downloadUrl"])
            assert original.content == (PHOTOS / name).read_bytes()
            thumbnail = api.get(row["thumbnailUrl"])
            assert thumbnail.headers["Content-Type"] == "image/jpeg"
            assert max(Image.open(io.BytesIO(thumbnail.content)).size) <= 128


def test_resizes_follow_exif_orientation(make_api) -> None:
    if not PHOTOS.is_dir():
        pytest.skip("sample photos not available")
    tenant = Tenant(seed=7, photos_dir=PHOTOS)
    with Sandbox(tenant) as sandbox:
        row = next(
            r for r in tenant.rows() if r["fileNameOriginal"] == "orientation_portrait_6.jpg"
        )
        image = Image.open(io.BytesIO(make_api(sandbox).get(row["mediumUrl"]).content))
    assert image.height > image.width


def test_unknown_files_get_404_json(api, sandbox: Sandbox) -> None:
    for file_id in ("0" * 24, "not-an-id", "..%2F..%2Fx"):
        response = api.get(f"{sandbox.core_url}/api/file/{file_id}")
        assert response.status_code == 404
        assert response.json()["error"] == "NotFound"


def test_bad_max_dimension_gets_400(api, tenant: Tenant) -> None:
    url = tenant.rows()[0]["downloadUrl"]
    assert api.get(url, params={"MaxDimension": "big"}).status_code == 400


def test_head_reports_the_size_without_a_body(api, tenant: Tenant) -> None:
    row = tenant.rows()[0]
    response = api.session.head(row["downloadUrl"], headers=api.headers(), timeout=TIMEOUT)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["Content-Length"] == str(row["fileSize"])


def test_single_ranges_are_served(api, tenant: Tenant) -> None:
    row = tenant.rows()[0]
    whole = tenant.original_bytes(row["id"])
    partial = api.get(row["downloadUrl"], headers={"Range": "bytes=10-99"})
    assert partial.status_code == 206 and partial.content == whole[10:100]
    assert partial.headers["Content-Range"] == f"bytes 10-99/{len(whole)}"
    assert api.get(row["downloadUrl"], headers={"Range": "bytes=-5"}).content == whole[-5:]
    beyond = api.get(row["downloadUrl"], headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status_code == 416


def test_sized_files_stream_exactly(make_api) -> None:
    probe = Tenant(seed=5, hours=1, parents_per_hour=2)
    huge = probe.file_ids()[0]
    tenant = Tenant(seed=5, hours=1, parents_per_hour=2, huge_files={huge: 48 * 1024 * 1024})
    with Sandbox(tenant) as sandbox:
        response = make_api(sandbox).get(f"{sandbox.core_url}/api/file/{huge}", stream=True)
        total = sum(len(chunk) for chunk in response.iter_content(1024 * 1024))
        assert total == 48 * 1024 * 1024
        assert response.headers["Content-Length"] == str(total)


@pytest.fixture
def redirecting(tenant: Tenant):
    with Sandbox(tenant, redirect_files=True) as sandbox:
        yield sandbox


def test_redirect_mode_sends_files_to_a_signed_blob_url(redirecting: Sandbox, make_api) -> None:
    api = make_api(redirecting)
    row = redirecting.tenant.rows()[0]
    response = api.get(row["downloadUrl"], allow_redirects=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{redirecting.url}/blob/{row['id']}?")
    blob = requests.get(location, timeout=TIMEOUT)
    assert blob.status_code == 200
    assert blob.content == redirecting.tenant.original_bytes(row["id"])
    assert blob.headers["Cache-Control"] == "public, max-age=1209600"


def test_blob_refuses_an_authorization_header(redirecting: Sandbox, make_api) -> None:
    api = make_api(redirecting)
    row = redirecting.tenant.rows()[0]
    # requests keeps the header on a same-host redirect, which blob storage refuses.
    response = api.get(row["downloadUrl"])
    assert response.status_code == 400
    assert b"InvalidAuthenticationInfo" in response.content
    assert redirecting.stats.log("blob")[-1]["has_authorization"] is True


def test_blob_refuses_a_tampered_signature(redirecting: Sandbox, make_api) -> None:
    row = redirecting.tenant.rows()[0]
    location = make_api(redirecting).get(row["mediumUrl"], allow_redirects=False)
    parts = urlsplit(location.headers["Location"])
    query = dict(parse_qsl(parts.query))
    assert query["dim"] == "640"
    forged = {**query, "dim": "1980"}
    url = urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in forged.items())))
    assert requests.get(url, timeout=TIMEOUT).status_code == 403
    resized = requests.get(location.headers["Location"], timeout=TIMEOUT)
    assert max(Image.open(io.BytesIO(resized.content)).size) <= 640


def test_blob_urls_expire(tenant: Tenant, make_api) -> None:
    now = [1_000_000.0]
    with Sandbox(tenant, redirect_files=True, blob_ttl=60, clock=lambda: now[0]) as sandbox:
        row = tenant.rows()[0]
        location = make_api(sandbox).get(row["downloadUrl"], allow_redirects=False)
        now[0] += 61
        response = requests.get(location.headers["Location"], timeout=TIMEOUT)
    assert response.status_code == 403


def test_blobs_can_live_on_a_second_loopback_host(tenant: Tenant, make_api) -> None:
    with Sandbox(tenant, redirect_files=True, blob_host="127.0.0.3") as sandbox:
        api = make_api(sandbox)
        row = tenant.rows()[0]
        # requests drops Authorization when a redirect changes host.
        response = api.get(row["downloadUrl"])
        assert response.status_code == 200
        assert response.content == tenant.original_bytes(row["id"])
        assert sandbox.blob_url.startswith("http://127.0.0.3:")
        assert sandbox.stats.log("blob")[-1]["has_authorization"] is False
