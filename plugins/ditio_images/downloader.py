"""Download one batch of files into S3, several at once, each streamed end to end."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ditio_images.client import DitioClient
from ditio_images.exceptions import (
    DitioIncompleteBody,
    DitioNotFound,
    DitioRefused,
    DitioResponseTooLarge,
)
from ditio_images.layout import Layout
from ditio_images.retry import RetryPolicy
from ditio_images.s3store import S3Store

log = logging.getLogger(__name__)

STORED, PRESENT, MISSING, REFUSED, TOO_LARGE = (
    "stored",
    "present",
    "missing",
    "refused",
    "too_large",
)


@dataclass(frozen=True)
class DownloadSettings:
    """How hard one worker pushes.

    :param in_flight: downloads streaming at once in this worker.
    :param chunk_size: bytes read from the response per step.
    """

    in_flight: int = 16
    chunk_size: int = 256 * 1024


@dataclass
class BatchResult:
    """Per file: the stored key of each variant and what happened to it."""

    files: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def record(self, file_id: str, variant: str, status: str, key: str | None = None) -> None:
        """Note a variant's outcome. An object found already stored counts as ``present`` in
        the stats but reads ``stored`` in the manifest, so a re-run writes the same manifest."""
        entry = self.files.setdefault(file_id, {"objects": {}, "status": {}})
        entry["status"][variant] = STORED if status == PRESENT else status
        if key:
            entry["objects"][variant] = key
        self.stats[status] = self.stats.get(status, 0) + 1

    def add_bytes(self, size: int) -> None:
        self.stats["bytes"] = self.stats.get("bytes", 0) + size

    def to_json(self) -> dict[str, Any]:
        """The files' state only, so re-running a batch writes identical results."""
        return {"files": self.files}


@dataclass(frozen=True)
class _Job:
    file_id: str
    variant: str
    url: str
    expected_size: int | None


class BatchDownloader:
    """Fetch the files of a batch that are not in the bucket yet and stream them into S3."""

    def __init__(
        self,
        *,
        client: DitioClient,
        store: S3Store,
        layout: Layout,
        policy: RetryPolicy,
        settings: DownloadSettings | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.layout = layout
        self.policy = policy
        self.settings = settings or DownloadSettings()
        self._lock = threading.Lock()
        # A slot covers a file's download only; its final PUT runs after the slot is freed.
        self._slots = threading.BoundedSemaphore(self.settings.in_flight)

    def run(self, entries: Sequence[dict[str, Any]], variants: Sequence[str]) -> BatchResult:
        began = time.monotonic()
        result = BatchResult()
        jobs = self._plan(entries, variants, result)
        log.info(
            "Batch of %d files: %d objects already stored, %d to download",
            len(entries),
            result.stats.get(PRESENT, 0),
            len(jobs),
        )
        self._run_jobs(jobs, result)
        log.info("Batch done in %.1fs: %s", time.monotonic() - began, _describe_stats(result.stats))
        return result

    def _plan(
        self, entries: Sequence[dict[str, Any]], variants: Sequence[str], result: BatchResult
    ) -> list[_Job]:
        present = self.store.existing_objects(self.layout, [entry["id"] for entry in entries])
        jobs = []
        for entry in entries:
            for variant in variants:
                key = present.get((entry["id"], variant))
                url = entry["urls"].get(variant)
                if key:
                    result.record(entry["id"], variant, PRESENT, key)
                elif not url:
                    result.record(entry["id"], variant, "no_url")
                else:
                    size = entry.get("size") if variant == "original" else None
                    jobs.append(_Job(entry["id"], variant, url, size))
        return jobs

    def _run_jobs(self, jobs: list[_Job], result: BatchResult) -> None:
        if not jobs:
            return
        # Twice the slots: up to ``in_flight`` downloads stream while finished ones commit.
        with ThreadPoolExecutor(2 * self.settings.in_flight, "ditio-download") as pool:
            futures: list[Future[None]] = [pool.submit(self._fetch, job, result) for job in jobs]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [future for future in done if future.exception() is not None]
            if failed:
                for future in pending:
                    future.cancel()
                raise failed[0].exception()  # type: ignore[misc]

    def _fetch(self, job: _Job, result: BatchResult) -> None:
        try:
            key, size = self.policy.run(
                lambda: self._transfer(job), describe=f"download {job.file_id}/{job.variant}"
            )
        except DitioNotFound:
            self._record(result, job, MISSING)
            log.warning("File %s (%s) is gone (404); recorded as missing", job.file_id, job.variant)
            return
        except DitioRefused as err:
            self._record(result, job, REFUSED)
            log.warning("File %s (%s) not fetched: %s", job.file_id, job.variant, err)
            return
        except DitioResponseTooLarge as err:
            self._record(result, job, TOO_LARGE)
            log.warning("File %s (%s) skipped: %s", job.file_id, job.variant, err)
            return
        with self._lock:
            result.record(job.file_id, job.variant, STORED, key)
            result.add_bytes(size)

    def _record(self, result: BatchResult, job: _Job, status: str) -> None:
        with self._lock:
            result.record(job.file_id, job.variant, status)

    def _transfer(self, job: _Job) -> tuple[str, int]:
        with _Slot(self._slots) as slot, self.client.open_file(job.url) as stream:
            expected = job.expected_size
            announced = stream.content_length
            if expected is not None and announced is not None and announced != expected:
                raise DitioIncompleteBody(
                    url=job.url,
                    received=0,
                    expected=expected,
                    reason=f"Content-Length {announced} differs from the listed fileSize",
                )
            key = self.layout.image_key(job.file_id, job.variant, stream.content_type)
            size = self.store.upload_stream(
                key,
                stream.iter_chunks(self.settings.chunk_size),
                content_type=stream.content_type,
                expected_size=expected if expected is not None else announced,
                before_commit=slot.release,
            )
        return key, size


class _Slot:
    """Hold one download slot; :meth:`release` may be called early, and only once counts."""

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self._slots = slots
        self._held = False

    def __enter__(self) -> _Slot:
        self._slots.acquire()
        self._held = True
        return self

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()

    def __exit__(self, *_: object) -> None:
        self.release()


def _describe_stats(stats: dict[str, int]) -> str:
    return ", ".join(f"{name}={value}" for name, value in sorted(stats.items())) or "nothing to do"
