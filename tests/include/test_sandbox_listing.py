from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import pytest

from ditio_sandbox import Sandbox, Tenant

SINCE = "2026-04-12T06:00:00Z"


def key(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["id"], row["collectionRef"], row["idRef"]


def parents_of(page: dict[str, Any]) -> set[tuple[str, str]]:
    return {(row["collectionRef"], row["idRef"]) for row in page["data"]}


@pytest.mark.parametrize("chunk_limit", [1, 2, 3, 7, 2500])
def test_full_paging_returns_every_row_once(api, tenant: Tenant, chunk_limit: int) -> None:
    rows = api.rows({"ChunkLimit": chunk_limit})
    assert Counter(map(key, rows)) == Counter(map(key, tenant.rows()))
    assert all(count == 1 for count in Counter(map(key, rows)).values())


@pytest.mark.parametrize("chunk_limit", [1, 4, 10])
def test_incremental_paging_returns_the_window_once(api, tenant: Tenant, chunk_limit: int) -> None:
    params = {"ModifiedSince": SINCE, "ModifiedBefore": "2026-04-12T08:00:00Z"}
    rows = api.rows({**params, "ChunkLimit": chunk_limit})
    expected = tenant.rows_between(SINCE, "2026-04-12T08:00:00Z")
    assert [key(row) for row in rows] == [key(row) for row in expected]


@pytest.mark.parametrize("chunk_limit", [1, 2, 5])
def test_a_parent_is_never_split_across_pages(api, chunk_limit: int) -> None:
    seen: set[tuple[str, str]] = set()
    for page in api.pages({"ModifiedSince": SINCE, "ChunkLimit": chunk_limit}):
        assert not parents_of(page) & seen
        seen |= parents_of(page)


def test_parents_sharing_a_timestamp_share_a_page(api) -> None:
    stamp_pages: dict[tuple[str, str], set[int]] = {}
    pages = api.pages({"ModifiedSince": SINCE, "ChunkLimit": 1})
    for number, page in enumerate(pages):
        for row in page["data"]:
            stamp = (row["source"], row["parentModifiedDateTime"])
            stamp_pages.setdefault(stamp, set()).add(number)
    assert all(len(numbers) == 1 for numbers in stamp_pages.values())
    assert any(len(parents_of(page)) > 1 for page in pages)


def test_pages_drain_sources_in_order(api) -> None:
    sources = [row["source"] for row in api.rows({"ChunkLimit": 3})]
    assert sources == sorted(sources, key=["feed", "alert", "checklist"].index)


def test_an_exhausted_source_can_leave_an_empty_page_with_a_token(api) -> None:
    pages = api.pages({"ChunkLimit": 1})
    empty = [page for page in pages if not page["data"] and page.get("continuationToken")]
    assert empty
    assert all(page["recordCount"] == 0 for page in empty)


def test_envelope_has_the_documented_fields(api) -> None:
    page = api.page({"ChunkLimit": 2, "ModifiedSince": SINCE}).json()
    assert page["meta"] == {} and page["syncTypeName"] == "incremental"
    assert page["recordCount"] == len(page["data"]) and page["deletedRecordCount"] == 0
    token = page["continuationToken"]
    assert page["links"]["next"].startswith("/v1/images?")
    assert "ContinuationToken=" in page["links"]["next"]
    assert base64.b64decode(token)
    assert api.page({"ChunkLimit": 2}).json()["syncTypeName"] == "full"


@pytest.mark.parametrize("style", ["absent", "null", "empty"])
def test_last_page_token_style_is_configurable(make_api, style: str) -> None:
    with Sandbox(Tenant(hours=1, parents_per_hour=3), last_token=style) as sandbox:
        last = make_api(sandbox).pages({})[-1]
    expected = {"absent": "missing", "null": None, "empty": ""}[style]
    assert last.get("continuationToken", "missing") == expected
    assert last["links"] == {}


def test_the_token_must_come_with_unchanged_parameters(api) -> None:
    token = api.page({"ChunkLimit": 2, "ModifiedSince": SINCE}).json()["continuationToken"]
    for changed in (
        {"ChunkLimit": 3, "ModifiedSince": SINCE},
        {"ChunkLimit": 2},
        {"ChunkLimit": 2, "ModifiedSince": SINCE, "Sources": "feed"},
    ):
        response = api.page({**changed, "ContinuationToken": token})
        assert response.status_code == 400
        assert response.json()["error"] == "ContinuationTokenMismatch"


@pytest.mark.parametrize("token", ["not base64!", "e30=", "eyJzIjoibm9uZSJ9", "a b"])
def test_a_malformed_token_is_rejected(api, token: str) -> None:
    response = api.page({"ContinuationToken": token})
    assert response.status_code == 400
    assert set(response.json()) == {"error", "message"}


def test_modified_since_is_inclusive_and_modified_before_exclusive(api) -> None:
    window = {"ModifiedSince": "2026-04-12T07:00:00Z", "ModifiedBefore": "2026-04-12T08:00:00Z"}
    stamps = {row["parentModifiedDateTime"] for row in api.rows(window)}
    assert "2026-04-12T07:00:00.000Z" in stamps
    assert "2026-04-12T07:59:59.999Z" in stamps
    assert "2026-04-12T08:00:00.000Z" not in stamps
    assert min(stamps) >= "2026-04-12T07:00:00.000Z"


def test_adjacent_windows_partition_the_rows(api, tenant: Tenant) -> None:
    hours = ["2026-04-12T06:00:00Z", "2026-04-12T07:00:00Z", "2026-04-12T08:00:00Z"]
    first = api.rows({"ModifiedSince": hours[0], "ModifiedBefore": hours[1]})
    second = api.rows({"ModifiedSince": hours[1], "ModifiedBefore": hours[2]})
    both = api.rows({"ModifiedSince": hours[0], "ModifiedBefore": hours[2]})
    assert sorted(map(key, first + second)) == sorted(map(key, both))


def test_full_window_filters_on_creation_time(api, tenant: Tenant) -> None:
    window = {"FromDateTime": "2026-04-12T05:00:00Z", "ToDateTime": "2026-04-12T07:30:00Z"}
    rows = api.rows(window)
    expected = tenant.rows_created_between(window["FromDateTime"], window["ToDateTime"])
    assert rows and sorted(map(key, rows)) == sorted(map(key, expected))
    assert all("2026-04-12T05" <= row["createdDateTime"] < "2026-04-12T07:30" for row in rows)


def test_offsets_and_fractions_are_parsed(api) -> None:
    a = api.rows({"ModifiedSince": "2026-04-12T09:00:00.000+02:00"})
    b = api.rows({"ModifiedSince": "2026-04-12T07:00:00Z"})
    assert a == b


@pytest.mark.parametrize(
    "params",
    [
        {"Sources": "feed,alert"},
        [("Sources", "feed"), ("Sources", "alert")],
        [("Sources[0]", "feed"), ("Sources[1]", "ALERT")],
    ],
)
def test_sources_accept_lists_and_repeated_keys(api, params: Any) -> None:
    assert {row["source"] for row in api.rows(params)} == {"feed", "alert"}


def test_empty_sources_means_all(api) -> None:
    assert {row["source"] for row in api.rows({"Sources": ""})} == {"feed", "alert", "checklist"}


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"ProjectId": "65a000000000000000000002"}, lambda r: r["projectId"].endswith("02")),
        ({"CompanyId": "620000000000000000000002"}, lambda r: r["projectCompanyId"].endswith("2")),
        ({"RequireGeoCoordinate": "TRUE"}, lambda r: r["latitude"] is not None),
        ({"OwnCompanyDataOnly": "true"}, lambda r: r["projectCompanyId"][-1] in "12"),
        ({"ExcludeDataFromSubsidiaries": "true"}, lambda r: r["projectCompanyId"][-1] != "2"),
    ],
)
def test_filters_narrow_the_rows(api, tenant: Tenant, params: dict, check: Any) -> None:
    rows = api.rows(params)
    assert rows and len(rows) < len(tenant.rows())
    assert all(check(row) for row in rows)


def test_filters_match_the_tenant_helpers(api, tenant: Tenant) -> None:
    params = {"ModifiedSince": SINCE, "ProjectId": "65a000000000000000000002", "Sources": "alert"}
    rows = api.rows({**params, "RequireGeoCoordinate": "true"})
    expected = tenant.rows_between(
        SINCE, None, project_id=params["ProjectId"], sources=["alert"], require_geo=True
    )
    assert [key(row) for row in rows] == [key(row) for row in expected]


@pytest.mark.parametrize(
    "params",
    [
        {"ModifiedBefore": "2026-04-12T08:00:00Z"},
        {"ModifiedSince": "2026-04-12T08:00:00Z", "ModifiedBefore": "2026-04-12T08:00:00Z"},
        {"ModifiedSince": "2026-04-12T08:00:00Z", "ModifiedBefore": "2026-04-12T07:00:00Z"},
        {"ModifiedSince": "yesterday"},
        {"ModifiedSince": "2026-04-12T07:00:00 00:00"},
        {"FromDateTime": "2026-04-12T08:00:00Z", "ToDateTime": "2026-04-12T07:00:00Z"},
        {"ChunkLimit": 0},
        {"ChunkLimit": 10001},
        {"ChunkLimit": "many"},
        {"Sources": "feed,photos"},
        {"RequireGeoCoordinate": "yes"},
        {"OwnCompanyDataOnly": ""},
        {"ProjectId": "not-an-id"},
        [("ChunkLimit", "2"), ("ChunkLimit", "3")],
    ],
)
def test_bad_parameters_get_400_with_an_error_body(api, params: Any) -> None:
    response = api.page(params)
    assert response.status_code == 400
    assert set(response.json()) == {"error", "message"}


def test_chunk_limit_bounds_are_accepted(api) -> None:
    assert api.page({"ChunkLimit": 1}).status_code == 200
    assert api.page({"ChunkLimit": 10000}).status_code == 200


def test_unknown_project_or_company_gets_403(api) -> None:
    assert api.page({"ProjectId": "65a0000000000000000000ff"}).status_code == 403
    assert api.page({"CompanyId": "6200000000000000000000ff"}).status_code == 403


def test_forbidden_project_and_company_get_403(tenant: Tenant, make_api) -> None:
    project, company = tenant.projects[1].project_id, tenant.companies[2].company_id
    options = {"forbidden_projects": [project], "forbidden_companies": [company]}
    with Sandbox(tenant, **options) as sandbox:
        api = make_api(sandbox)
        assert api.page({"ProjectId": project}).status_code == 403
        assert api.page({"CompanyId": company}).status_code == 403
        assert api.page({"ProjectId": tenant.projects[0].project_id}).status_code == 200


def test_bad_rows_are_served_among_good_ones(make_api) -> None:
    tenant = Tenant(seed=7, bad_rows=True)
    with Sandbox(tenant) as sandbox:
        rows = make_api(sandbox).rows({"ModifiedSince": SINCE, "ChunkLimit": 5})
    bad = [row for row in rows if not isinstance(row, dict) or row not in tenant.rows()]
    assert len(bad) == tenant.bad_row_count(SINCE) > 0
    assert None in bad or "not a row" in bad


def test_a_large_hour_pages_lazily(make_api) -> None:
    tenant = Tenant(
        hours=1, parents_per_hour=20_000, images_per_parent=(1, 1), shared_files=0, file_bytes=100
    )
    with Sandbox(tenant) as sandbox:
        pages = make_api(sandbox).pages({"ModifiedSince": SINCE, "ChunkLimit": 5000})
    assert sum(page["recordCount"] for page in pages) == 20_000
