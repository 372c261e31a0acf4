"""List one data interval into staging, resumably, then plan its download batches.

Staging for an interval lives under ``{prefix}_staging/dt=YYYY-MM-DD/hour=HH/``:

- ``pages/NNNNNN.jsonl.gz``: each API page's rows exactly as received;
- ``checkpoint.json``: the continuation token and pages done, written after each page;
- ``batches/NNNNNN.jsonl``: the unique files to download, in batches;
- ``rejects.jsonl`` and ``plan.json``: rows that cannot be used, and the counts.

Memory stays bounded by one page: rows stream to staging page by page, and de-duplication
uses a disk index rather than in-memory sets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ditio_images.client import DitioClient
from ditio_images.exceptions import DitioBadRequest, DitioConfigError, DitioRetryableError
from ditio_images.layout import Layout
from ditio_images.pager import Pager
from ditio_images.rows import file_entry, reject_reason, row_identity
from ditio_images.s3store import S3Store, gzip_stream, json_line
from ditio_images.seen import DiskIndex

log = logging.getLogger(__name__)

SOURCES = ("feed", "alert", "checklist")
MAX_CHUNK_LIMIT = 10_000


def api_time(moment: datetime) -> str:
    """Format an aware datetime as the API expects: UTC with a ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("datetimes sent to the API must be timezone-aware")
    utc = moment.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return f"{utc:%Y-%m-%dT%H:%M:%S}{fraction}Z"


@dataclass(frozen=True)
class ListingRequest:
    """One interval's listing: the window plus every filter, unchanged while paging."""

    start: datetime
    end: datetime
    project_id: str | None = None
    company_id: str | None = None
    sources: tuple[str, ...] = SOURCES
    require_geo: bool = False
    own_company_only: bool = False
    exclude_subsidiaries: bool = False
    chunk_limit: int = 2500

    def __post_init__(self) -> None:
        if not self.end > self.start:
            raise DitioConfigError(f"Empty interval [{self.start}, {self.end}): end must be later")
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown or not self.sources:
            raise DitioConfigError(f"sources must be a non-empty subset of {list(SOURCES)}")
        limit = self.chunk_limit
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise DitioConfigError(f"chunk_limit must be a whole number, got {limit!r}")
        if not 1 <= limit <= MAX_CHUNK_LIMIT:
            raise DitioConfigError(f"chunk_limit must be 1..{MAX_CHUNK_LIMIT}, got {limit}")

    def params(self) -> dict[str, Any]:
        query: dict[str, Any] = {
            "ModifiedSince": api_time(self.start),
            "ModifiedBefore": api_time(self.end),
            "ChunkLimit": self.chunk_limit,
        }
        if self.project_id:
            query["ProjectId"] = self.project_id
        if self.company_id:
            query["CompanyId"] = self.company_id
        if set(self.sources) != set(SOURCES):
            query["Sources"] = [name for name in SOURCES if name in self.sources]
        for name, flag in (
            ("RequireGeoCoordinate", self.require_geo),
            ("OwnCompanyDataOnly", self.own_company_only),
            ("ExcludeDataFromSubsidiaries", self.exclude_subsidiaries),
        ):
            if flag:
                query[name] = True
        return query

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()

    def context(self) -> str:
        """The filters in force, for error messages (a 403 names them)."""
        parts = [f"ProjectId={self.project_id}" if self.project_id else "ProjectId=(all)"]
        parts.append(f"CompanyId={self.company_id}" if self.company_id else "CompanyId=(all)")
        parts.append("Sources=" + ",".join(self.sources))
        return ", ".join(parts)


@dataclass
class Staging:
    """Keys of one interval's staging folder."""

    folder: str

    @property
    def checkpoint(self) -> str:
        return f"{self.folder}checkpoint.json"

    @property
    def plan(self) -> str:
        return f"{self.folder}plan.json"

    @property
    def rejects(self) -> str:
        return f"{self.folder}rejects.jsonl"

    def page(self, number: int) -> str:
        return f"{self.folder}pages/{number:06d}.jsonl.gz"

    def batch(self, number: int) -> str:
        return f"{self.folder}batches/{number:06d}.jsonl"

    def results(self, number: int) -> str:
        return f"{self.folder}results/{number:06d}.json"


def run_staging(layout: Layout, start: datetime, run_id: str) -> Staging:
    """The staging of one DAG run of an hour.

    Runs of the same hour can overlap (a scheduled run, a manual one, a backfill); each gets its
    own folder so none can read or clear another's pages. A retry of the same run finds its own
    checkpoint again and resumes.
    """
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:16]
    return Staging(f"{layout.staging_folder(start)}run={digest}/")


@dataclass
class ListingOutcome:
    pages: int
    rows: int
    resumed_from_page: int = 0
    restarted: bool = False
    seconds: float = 0.0


def list_interval(
    client: DitioClient,
    store: S3Store,
    layout: Layout,
    request: ListingRequest,
    *,
    staging: Staging | None = None,
) -> ListingOutcome:
    """Page through the interval into staging, checkpointing after every stored page.

    :param staging: where to stage; by default the hour's shared folder (see :func:`run_staging`
        for the per-run folder the operators use).
    """
    began = time.monotonic()
    staging = staging or Staging(layout.staging_folder(request.start))
    pager, rows = _resume_or_reset(store, staging, request)
    outcome = ListingOutcome(pages=0, rows=0, resumed_from_page=pager.pages)
    resumed = pager.pages > 0
    while not pager.finished:
        try:
            envelope = client.list_images(pager.params(request.params()), context=request.context())
        except DitioBadRequest:
            if not resumed:
                raise
            pager, rows = _restart(store, staging, pager.pages), 0
            outcome.restarted, resumed = True, False
            continue
        resumed = False
        rows = _store_page(store, staging, request, pager, envelope, rows)
    outcome.pages, outcome.rows = pager.pages, rows
    outcome.seconds = time.monotonic() - began
    return outcome


def _restart(store: S3Store, staging: Staging, pages: int) -> Pager:
    log.warning(
        "The API rejected the saved continuation token (page %d); restarting the interval "
        "from its beginning.",
        pages,
    )
    store.delete_prefix(staging.folder)
    return Pager()


def _store_page(
    store: S3Store,
    staging: Staging,
    request: ListingRequest,
    pager: Pager,
    envelope: dict[str, Any],
    rows: int,
) -> int:
    """Stage one page, then checkpoint past it; return the rows staged so far."""
    data = envelope["data"]
    store.upload_stream(
        staging.page(pager.pages + 1),
        gzip_stream(json_line(row) for row in data),
        content_type="application/gzip",
    )
    pager.advance(envelope)
    rows += len(data)
    _save_checkpoint(store, staging, request, pager, rows)
    log.info("Listed page %d: %d rows (%d so far)", pager.pages, len(data), rows)
    return rows


def _resume_or_reset(
    store: S3Store, staging: Staging, request: ListingRequest
) -> tuple[Pager, int]:
    saved = store.get_json(staging.checkpoint)
    resumable = (
        isinstance(saved, dict)
        and saved.get("fingerprint") == request.fingerprint()
        and not saved.get("finished")
        and saved.get("pages", 0) > 0
    )
    if resumable:
        log.info("Resuming the listing after page %d (%d rows)", saved["pages"], saved["rows"])
        return Pager.resume(saved["token"], saved["pages"]), int(saved["rows"])
    removed = store.delete_prefix(staging.folder)
    if removed:
        log.info("Cleared %d staging objects of an earlier listing of this interval", removed)
    return Pager(), 0


def _save_checkpoint(
    store: S3Store, staging: Staging, request: ListingRequest, pager: Pager, rows: int
) -> None:
    store.put_json(
        staging.checkpoint,
        {
            "fingerprint": request.fingerprint(),
            "token": pager.token,
            "pages": pager.pages,
            "rows": rows,
            "finished": pager.finished,
        },
    )


def iter_staged_rows(store: S3Store, staging: Staging, pages: int) -> Iterator[Any]:
    """Every staged row, page by page, as parsed JSON."""
    for number in range(1, pages + 1):
        for line in store.iter_lines(staging.page(number)):
            yield json.loads(line)


@dataclass
class Plan:
    """What the listing found and how the downloads are split."""

    pages: int
    rows: int = 0
    unique_rows: int = 0
    duplicate_rows: int = 0
    rejected_rows: int = 0
    unique_files: int = 0
    batches: int = 0
    groups: list[tuple[int, int]] = field(default_factory=list)
    variants: tuple[str, ...] = ("original",)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["groups"] = [list(group) for group in self.groups]
        data["variants"] = list(self.variants)
        return data


def plan_downloads(
    store: S3Store,
    layout: Layout,
    start: datetime,
    *,
    variants: Sequence[str],
    files_per_batch: int,
    max_groups: int,
    staging: Staging | None = None,
) -> Plan:
    """Validate and de-duplicate the staged rows, write batches of unique files and rejects."""
    staging = staging or Staging(layout.staging_folder(start))
    checkpoint = store.get_json(staging.checkpoint) or {}
    if not checkpoint.get("finished"):
        raise DitioConfigError("The interval's listing has not finished; run the listing first.")
    plan = Plan(pages=int(checkpoint["pages"]), variants=tuple(variants))
    with DiskIndex() as rows_seen, DiskIndex() as files_seen:
        batches = _BatchWriter(store, staging, files_per_batch)
        with store.writer(staging.rejects, "application/x-ndjson") as rejects:
            for row in iter_staged_rows(store, staging, plan.pages):
                _plan_row(plan, row, rows_seen, files_seen, batches, rejects)
            _check_staged_count(plan, checkpoint, staging)
        plan.batches = batches.finish()
    plan.groups = group_batches(plan.batches, max_groups)
    store.put_json(staging.plan, plan.to_json())
    return plan


def _check_staged_count(plan: Plan, checkpoint: dict[str, Any], staging: Staging) -> None:
    if plan.rows != checkpoint.get("rows"):
        raise DitioRetryableError(
            f"Staging {staging.folder} holds {plan.rows} rows but the listing stored "
            f"{checkpoint.get('rows')}: it changed underneath this run. The listing is retried."
        )


def _plan_row(
    plan: Plan,
    row: Any,
    rows_seen: DiskIndex,
    files_seen: DiskIndex,
    batches: _BatchWriter,
    rejects: Any,
) -> None:
    plan.rows += 1
    reason = reject_reason(row)
    if reason:
        plan.rejected_rows += 1
        rejects.write(json_line({"reason": reason, "row": row}))
        log.warning("Rejected a row: %s", reason)
        return
    if not rows_seen.add(row_identity(row)):
        plan.duplicate_rows += 1
        return
    plan.unique_rows += 1
    if files_seen.add(row["id"]):
        plan.unique_files += 1
        batches.add(file_entry(row, plan.variants))


class _BatchWriter:
    def __init__(self, store: S3Store, staging: Staging, size: int) -> None:
        self.store, self.staging, self.size = store, staging, max(1, size)
        self.count = 0
        self._pending: list[bytes] = []

    def add(self, entry: Mapping[str, Any]) -> None:
        self._pending.append(json_line(entry))
        if len(self._pending) >= self.size:
            self._flush()

    def finish(self) -> int:
        if self._pending:
            self._flush()
        return self.count

    def _flush(self) -> None:
        self.count += 1
        body = b"".join(self._pending)
        self.store.put_bytes(self.staging.batch(self.count), body, "application/x-ndjson")
        self._pending = []


def group_batches(batches: int, max_groups: int) -> list[tuple[int, int]]:
    """Split batch numbers ``1..batches`` into at most ``max_groups`` contiguous ranges."""
    if batches <= 0:
        return []
    groups = min(batches, max(1, max_groups))
    size, extra = divmod(batches, groups)
    ranges = []
    first = 1
    for index in range(groups):
        last = first + size - 1 + (1 if index < extra else 0)
        ranges.append((first, last))
        first = last + 1
    return ranges


def read_batch(store: S3Store, staging: Staging, number: int) -> list[dict[str, Any]]:
    body = store.get_bytes(staging.batch(number))
    if body is None:
        raise DitioConfigError(
            f"Download batch {number} is missing from {staging.folder}; re-run the listing task."
        )
    return [json.loads(line) for line in body.splitlines() if line.strip()]
