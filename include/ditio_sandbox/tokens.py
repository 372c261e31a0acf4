"""Access tokens of the fake identity server, checked against the sandbox clock."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

REPORTING_SCOPE = "reportingapiv1"
KNOWN_SCOPES = frozenset({REPORTING_SCOPE, "ditioapiv3"})


@dataclass
class Grant:
    expires_at: float
    scopes: frozenset[str]


class TokenStore:
    """Issues opaque bearer tokens and answers whether one is usable right now."""

    def __init__(self, lifetime: int, clock: Callable[[], float]) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        self.revoked = False

    def issue(self, scopes: frozenset[str]) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._grants[token] = Grant(self._clock() + self.lifetime, scopes)
        return token

    def check(self, token: str) -> tuple[str, Grant | None]:
        """('ok' | 'unknown' | 'expired' | 'revoked', grant)."""
        with self._lock:
            grant = self._grants.get(token)
        if grant is None:
            return "unknown", None
        if self.revoked:
            return "revoked", grant
        if self._clock() >= grant.expires_at:
            return "expired", grant
        return "ok", grant

    def expire_all(self) -> None:
        """Every token issued so far is expired from now on."""
        now = self._clock()
        with self._lock:
            for grant in self._grants.values():
                grant.expires_at = min(grant.expires_at, now)

    def revoke(self) -> None:
        """Disable the client: current and future tokens are refused until `restore()`."""
        self.revoked = True

    def restore(self) -> None:
        self.revoked = False
