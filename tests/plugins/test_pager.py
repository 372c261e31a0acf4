from __future__ import annotations

import pytest

from ditio_images.exceptions import DitioPagingLoopError
from ditio_images.pager import Pager


def test_stops_only_on_an_absent_or_empty_token():
    pager = Pager()
    pager.advance({"data": [], "continuationToken": "t1"})
    assert not pager.finished and pager.token == "t1"
    pager.advance({"data": [{"id": "x"}], "continuationToken": ""})
    assert pager.finished and pager.pages == 2


@pytest.mark.parametrize("last", [{}, {"continuationToken": None}, {"continuationToken": ""}])
def test_each_form_of_last_page_ends_the_listing(last):
    pager = Pager()
    pager.advance({"data": [], **last})
    assert pager.finished


def test_keeps_every_parameter_and_adds_the_token():
    pager = Pager()
    base = {"ModifiedSince": "2026-04-12T06:00:00Z", "ChunkLimit": 10}
    assert pager.params(base) == base
    pager.advance({"continuationToken": "abc=="})
    assert pager.params(base) == {**base, "ContinuationToken": "abc=="}
    assert base == {"ModifiedSince": "2026-04-12T06:00:00Z", "ChunkLimit": 10}


def test_raises_when_a_token_comes_back():
    pager = Pager()
    pager.advance({"continuationToken": "a"})
    pager.advance({"continuationToken": "b"})
    with pytest.raises(DitioPagingLoopError, match="already returned"):
        pager.advance({"continuationToken": "a"})


def test_resumes_from_a_checkpoint_and_still_detects_the_same_token():
    pager = Pager.resume("t5", 5)
    assert pager.pages == 5 and pager.params({})["ContinuationToken"] == "t5"
    with pytest.raises(DitioPagingLoopError):
        pager.advance({"continuationToken": "t5"})
