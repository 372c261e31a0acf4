"""Which hour a run lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def resolve_interval(
    start: datetime | None, end: datetime | None, run_after: datetime | None
) -> tuple[datetime, datetime, bool]:
    """Return ``(start, end, inferred)`` for a run.

    Scheduled and backfill runs carry a real data interval and it is used as is. A manual run
    may carry none (or a zero-length one); it then lists the last complete hour before it was
    triggered, and ``inferred`` is True so the caller can say so in the log.
    """
    if start is not None and end is not None and end > start:
        return start.astimezone(UTC), end.astimezone(UTC), False
    anchor = end or run_after or datetime.now(UTC)
    stop = floor_hour(anchor)
    return stop - HOUR, stop, True
