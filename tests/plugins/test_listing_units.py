from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ditio_images.exceptions import DitioConfigError
from ditio_images.listing import ListingRequest, api_time, group_batches

START = datetime(2026, 4, 12, 6, tzinfo=UTC)
END = START + timedelta(hours=1)


def test_sends_the_window_as_utc_with_z():
    oslo = timezone(timedelta(hours=2))
    assert api_time(START.astimezone(oslo)) == "2026-04-12T06:00:00Z"
    assert ListingRequest(START, END).params() == {
        "ModifiedSince": "2026-04-12T06:00:00Z",
        "ModifiedBefore": "2026-04-12T07:00:00Z",
        "ChunkLimit": 2500,
    }


def test_sends_filters_only_when_set():
    request = ListingRequest(
        START, END, project_id="p", company_id="c", sources=("checklist", "feed"), require_geo=True
    )
    params = request.params()
    assert params["ProjectId"] == "p" and params["CompanyId"] == "c"
    assert params["Sources"] == ["feed", "checklist"]
    assert params["RequireGeoCoordinate"] is True
    assert "OwnCompanyDataOnly" not in params
    assert "ProjectId=p" in request.context() and "CompanyId=c" in request.context()


def test_fingerprint_changes_with_any_filter():
    assert (
        ListingRequest(START, END).fingerprint()
        != ListingRequest(START, END, project_id="p").fingerprint()
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"end": START},
        {"sources": ()},
        {"sources": ("feed", "posts")},
        {"chunk_limit": 0},
        {"chunk_limit": 10001},
        {"chunk_limit": "2500"},
    ],
)
def test_refuses_bad_requests_before_calling_the_api(kwargs):
    with pytest.raises(DitioConfigError):
        ListingRequest(**{"start": START, "end": END, **kwargs})


@pytest.mark.parametrize(
    ("batches", "cap", "expected"),
    [
        (0, 1024, []),
        (3, 1024, [(1, 1), (2, 2), (3, 3)]),
        (5, 2, [(1, 3), (4, 5)]),
        (7, 3, [(1, 3), (4, 5), (6, 7)]),
    ],
)
def test_groups_batches_into_contiguous_ranges(batches, cap, expected):
    assert group_batches(batches, cap) == expected


def test_never_returns_more_groups_than_the_cap_and_covers_every_batch():
    groups = group_batches(5000, 1024)
    assert len(groups) == 1024
    covered = [n for first, last in groups for n in range(first, last + 1)]
    assert covered == list(range(1, 5001))
