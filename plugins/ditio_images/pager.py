"""Continuation-token paging as a small state object."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ditio_images.exceptions import DitioPagingLoopError


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


@dataclass
class Pager:
    """Where a listing stands: the token to send next, pages done, and whether it ended.

    The listing ends on an absent or empty token only; an empty page that still carries a
    token is not the end. A token that comes back again means the server is looping.
    """

    token: str | None = None
    pages: int = 0
    finished: bool = False
    _seen: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def resume(cls, token: str | None, pages: int) -> Pager:
        pager = cls(token=token, pages=pages, finished=pages > 0 and not token)
        if token:
            pager._seen.add(_digest(token))
        return pager

    def params(self, base: Mapping[str, Any]) -> dict[str, Any]:
        """The query for the next page: ``base`` unchanged, plus the token when there is one."""
        query = dict(base)
        if self.token:
            query["ContinuationToken"] = self.token
        return query

    def advance(self, envelope: Mapping[str, Any]) -> None:
        """Record one page's envelope."""
        if self.finished:
            raise RuntimeError("the listing already finished")
        self.pages += 1
        token = envelope.get("continuationToken")
        if not token:
            self.token, self.finished = None, True
            return
        digest = _digest(str(token))
        if digest in self._seen:
            raise DitioPagingLoopError(
                f"The API returned a continuation token it had already returned (page "
                f"{self.pages}); paging would never end. Re-run later or report it to Ditio."
            )
        self._seen.add(digest)
        self.token = str(token)
