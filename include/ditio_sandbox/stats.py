"""Request counters and a bounded request log of the sandbox server."""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any


class Stats:
    """Per-endpoint request counts, in-flight peaks and the last `log_size` requests.

    Counts grow when a request arrives; log entries are written when it ends and hold
    method, path, query, endpoint, status (0 for a reset connection), has_authorization,
    bytes_sent (body bytes), fault (the acting fault action or None), duration_s and
    client (`host:port` of the connection, to see keep-alive reuse).
    """

    def __init__(self, log_size: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._counts: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._peaks: Counter[str] = Counter()

    def begin(self, endpoint: str) -> None:
        with self._lock:
            self._counts[endpoint] += 1
            self._in_flight[endpoint] += 1
            self._peaks[endpoint] = max(self._peaks[endpoint], self._in_flight[endpoint])

    def end(self, endpoint: str, entry: dict[str, Any]) -> None:
        with self._settled:
            self._in_flight[endpoint] -= 1
            self._log.append(entry)
            self._settled.notify_all()

    def count(self, endpoint: str | None = None) -> int:
        """Requests seen on `endpoint` (all endpoints when None) since the last reset."""
        with self._lock:
            return self._counts[endpoint] if endpoint else sum(self._counts.values())

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def max_in_flight(self, endpoint: str) -> int:
        """The most concurrent requests seen on `endpoint`."""
        with self._lock:
            return self._peaks[endpoint]

    def log(self, endpoint: str | None = None, settle: float = 2.0) -> list[dict[str, Any]]:
        """The logged requests, oldest first.

        An entry is written once its response has gone out, so a client can hold the answer
        before the entry exists: wait up to ``settle`` seconds for requests in flight to end.
        """
        with self._settled:
            self._settled.wait_for(lambda: not +self._in_flight, timeout=settle)
            return [dict(e) for e in self._log if endpoint is None or e["endpoint"] == endpoint]

    def bytes_sent(self, endpoint: str | None = None) -> int:
        return sum(entry["bytes_sent"] for entry in self.log(endpoint))

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self._counts.clear()
            self._peaks.clear()
