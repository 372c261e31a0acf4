"""A disk-backed set and map, so memory stays flat however many rows an interval has."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from types import TracebackType


class DiskIndex:
    """Membership and small values keyed by string, kept in a temporary SQLite file.

    Use as a context manager; the file is removed on exit.
    """

    def __init__(self, directory: str | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ditio-index-", dir=directory)
        self._db = sqlite3.connect(Path(self._dir.name) / "index.sqlite", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA cache_size=-8192")
        self._db.execute("CREATE TABLE entries (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID")
        self._db.execute("BEGIN")

    def add(self, key: str) -> bool:
        """Add ``key``; return True when it was not there before."""
        cursor = self._db.execute("INSERT OR IGNORE INTO entries (k) VALUES (?)", (key,))
        return cursor.rowcount == 1

    def put(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO entries (k, v) VALUES (?, ?)", (key, value))

    def get(self, key: str) -> str | None:
        found = self._db.execute("SELECT v FROM entries WHERE k = ?", (key,)).fetchone()
        return None if found is None else found[0]

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()

    def __enter__(self) -> DiskIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
