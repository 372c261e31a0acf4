"""Airflow operators of the image sync: list an interval, download a batch, publish.

Each operator resolves its configuration, then hands over to a plain module. A
:class:`~ditio_images.exceptions.DitioFatalError` fails the task without Airflow retries;
anything else (including a spent in-task retry budget) leaves the retry to Airflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from ditio_images.exceptions import DitioConfigError, DitioFatalError
from ditio_images.hooks import DitioHook
from ditio_images.interval import resolve_interval
from ditio_images.layout import Layout, check_variants
from ditio_images.listing import (
    SOURCES,
    ListingRequest,
    Staging,
    list_interval,
    plan_downloads,
    run_staging,
)
from ditio_images.retry import RetryPolicy
from ditio_images.s3store import MIB, S3Store
from ditio_images.settings import positive_int

DEFAULT_FILES_PER_BATCH = 2000
DEFAULT_IN_FLIGHT = 16
DEFAULT_PART_SIZE_MB = 8
DEFAULT_PART_CONCURRENCY = 2
DEFAULT_MAX_MAP_LENGTH = 1024
STORAGE_FIELDS = ("bucket", "prefix", "part_size_mb", "part_concurrency")


class _DitioS3Operator(BaseOperator):
    """Shared plumbing: the interval, the bucket layout, the S3 store, error translation."""

    def __init__(
        self,
        *,
        bucket: str | None,
        prefix: str | None = "",
        ditio_conn_id: str = DitioHook.default_conn_name,
        aws_conn_id: str = "aws_default",
        part_size_mb: int = DEFAULT_PART_SIZE_MB,
        part_concurrency: int = DEFAULT_PART_CONCURRENCY,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.ditio_conn_id = ditio_conn_id
        self.aws_conn_id = aws_conn_id
        self.part_size_mb = part_size_mb
        self.part_concurrency = part_concurrency

    def execute(self, context: Context) -> Any:
        try:
            return self.run(context)
        except DitioFatalError as err:
            self.log.error("%s", err)
            raise AirflowFailException(str(err)) from err

    def run(self, context: Context) -> Any:
        raise NotImplementedError

    def interval(self, context: Context) -> tuple[datetime, datetime]:
        dag_run = context.get("dag_run")
        start, end, inferred = resolve_interval(
            context.get("data_interval_start"),
            context.get("data_interval_end"),
            getattr(dag_run, "run_after", None),
        )
        if inferred:
            self.log.warning(
                "This run has no data interval; listing the last complete hour [%s, %s)",
                start.isoformat(),
                end.isoformat(),
            )
        return start, end

    def layout(self) -> Layout:
        return Layout.create(self.bucket, self.prefix)

    def staging(self, context: Context, layout: Layout, start: datetime) -> Staging:
        return run_staging(layout, start, str(context["run_id"]))

    def hook(self, pool_size: int = DEFAULT_IN_FLIGHT) -> DitioHook:
        return DitioHook(self.ditio_conn_id, pool_size=pool_size)

    def store(self, layout: Layout, policy: RetryPolicy, connections: int = 10) -> S3Store:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from botocore.config import Config

        # Our retry policy already retries S3 calls; botocore's own retries would multiply it.
        config = Config(
            retries={"max_attempts": 1, "mode": "standard"},
            max_pool_connections=max(10, connections),
        )
        client = S3Hook(aws_conn_id=self.aws_conn_id, config=config).get_conn()
        return S3Store(
            client,
            layout.bucket,
            policy=policy,
            part_size=positive_int(self.part_size_mb, "part_size_mb") * MIB,
            part_concurrency=positive_int(self.part_concurrency, "part_concurrency"),
        )


class DitioListImagesOperator(_DitioS3Operator):
    """Page through ``GET /v1/images`` for the run's data interval and plan the downloads.

    Rows go to the interval's staging folder page by page (with a checkpoint after each, so a
    retry resumes), then are validated, de-duplicated and split into download batches. Returns
    at most ``max_map_length`` small batch descriptors for the mapped download task.

    :param project_id: only this project (``ProjectId``).
    :param company_id: only this project-company (``CompanyId``).
    :param sources: subset of feed, alert, checklist.
    :param require_geo: only images with a GPS position (``RequireGeoCoordinate``).
    :param own_company_only: only the calling company's data (``OwnCompanyDataOnly``).
    :param exclude_subsidiaries: leave out subsidiaries' data (``ExcludeDataFromSubsidiaries``).
    :param chunk_limit: page size in parent records, 1..10000.
    :param variants: which of original, large, medium, thumbnail to download.
    :param files_per_batch: unique files per download batch.
    :param max_map_length: cap on descriptors returned; defaults to ``[core] max_map_length``.
    """

    template_fields: Sequence[str] = (
        *STORAGE_FIELDS,
        "project_id",
        "company_id",
        "sources",
        "require_geo",
        "own_company_only",
        "exclude_subsidiaries",
        "chunk_limit",
        "variants",
        "files_per_batch",
    )

    def __init__(
        self,
        *,
        project_id: str | None = None,
        company_id: str | None = None,
        sources: Sequence[str] | str = SOURCES,
        require_geo: bool = False,
        own_company_only: bool = False,
        exclude_subsidiaries: bool = False,
        chunk_limit: int = 2500,
        variants: Sequence[str] | str = ("original",),
        files_per_batch: int = DEFAULT_FILES_PER_BATCH,
        max_map_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_id = project_id
        self.company_id = company_id
        self.sources = sources
        self.require_geo = require_geo
        self.own_company_only = own_company_only
        self.exclude_subsidiaries = exclude_subsidiaries
        self.chunk_limit = chunk_limit
        self.variants = variants
        self.files_per_batch = files_per_batch
        self.max_map_length = max_map_length

    def run(self, context: Context) -> list[dict[str, Any]]:
        start, end = self.interval(context)
        layout = self.layout()
        variants = check_variants(self.variants)
        request = self._request(start, end)
        hook = self.hook()
        store = self.store(layout, hook.settings.policy)
        self.log.info(
            "Listing [%s, %s) with %s", start.isoformat(), end.isoformat(), request.context()
        )
        staging = self.staging(context, layout, start)
        listed = list_interval(hook.get_conn(), store, layout, request, staging=staging)
        plan = plan_downloads(
            store,
            layout,
            start,
            variants=variants,
            files_per_batch=positive_int(self.files_per_batch, "files_per_batch"),
            max_groups=self._max_groups(),
            staging=staging,
        )
        self.log.info(
            "Listed %d pages in %.1fs: %d rows, %d unique, %d rejected, %d unique files in %d "
            "batches for %d download tasks",
            listed.pages,
            listed.seconds,
            plan.rows,
            plan.unique_rows,
            plan.rejected_rows,
            plan.unique_files,
            plan.batches,
            len(plan.groups),
        )
        return [{"first": first, "last": last} for first, last in plan.groups]

    def _request(self, start: datetime, end: datetime) -> ListingRequest:
        sources = [self.sources] if isinstance(self.sources, str) else list(self.sources or [])
        return ListingRequest(
            start=start,
            end=end,
            project_id=_optional_text(self.project_id),
            company_id=_optional_text(self.company_id),
            sources=tuple(sources),
            require_geo=bool(self.require_geo),
            own_company_only=bool(self.own_company_only),
            exclude_subsidiaries=bool(self.exclude_subsidiaries),
            chunk_limit=self.chunk_limit,
        )

    def _max_groups(self) -> int:
        if self.max_map_length is not None:
            return positive_int(self.max_map_length, "max_map_length")
        from airflow.configuration import conf

        return conf.getint("core", "max_map_length", fallback=DEFAULT_MAX_MAP_LENGTH)


class DitioDownloadBatchOperator(_DitioS3Operator):
    """Download the files of one batch descriptor into S3 and record what happened.

    :param batch: a descriptor from :class:`DitioListImagesOperator` (``first``/``last``).
    :param variants: which variants to fetch (as listed).
    :param downloads_in_flight: downloads streaming at once in this task.
    """

    template_fields: Sequence[str] = (
        *STORAGE_FIELDS,
        "batch",
        "variants",
        "downloads_in_flight",
    )

    def __init__(
        self,
        *,
        batch: dict[str, int],
        variants: Sequence[str] | str = ("original",),
        downloads_in_flight: int = DEFAULT_IN_FLIGHT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch = batch
        self.variants = variants
        self.downloads_in_flight = downloads_in_flight

    def run(self, context: Context) -> dict[str, int]:
        from ditio_images.downloader import BatchDownloader, DownloadSettings
        from ditio_images.listing import read_batch

        start, _ = self.interval(context)
        layout = self.layout()
        in_flight = positive_int(self.downloads_in_flight, "downloads_in_flight")
        hook = self.hook(pool_size=in_flight)
        store = self.store(layout, hook.settings.policy, connections=in_flight * 2)
        staging = self.staging(context, layout, start)
        downloader = BatchDownloader(
            client=hook.get_conn(),
            store=store,
            layout=layout,
            policy=hook.settings.policy,
            settings=DownloadSettings(in_flight=in_flight),
        )
        variants = check_variants(self.variants)
        totals: dict[str, int] = {}
        for number in _batch_numbers(self.batch):
            result = downloader.run(read_batch(store, staging, number), variants)
            store.put_json(staging.results(number), result.to_json())
            add_counts(totals, result.stats)
        return totals


class DitioPublishManifestOperator(_DitioS3Operator):
    """Write the interval's manifest partition, rejects and summary; return the summary.

    The summary written to ``runs/`` describes the interval; what this run did (objects
    downloaded or found already stored, bytes moved) is added under ``run`` in the returned
    value, from the download tasks' results.

    :param gzip: write the manifest as ``images.jsonl.gz``.
    :param download_task_id: the mapped download task whose results to add up.
    """

    template_fields: Sequence[str] = (*STORAGE_FIELDS, "gzip")

    def __init__(
        self, *, gzip: bool = False, download_task_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.gzip = gzip
        self.download_task_id = download_task_id

    def run(self, context: Context) -> dict[str, Any]:
        from ditio_images.publish import publish_interval

        start, end = self.interval(context)
        layout = self.layout()
        store = self.store(layout, self.hook().settings.policy)
        staging = self.staging(context, layout, start)
        summary = publish_interval(store, layout, start, end, gzip=bool(self.gzip), staging=staging)
        summary["run"] = self._run_totals(context)
        self.log.info(
            "Interval [%s, %s): %d rows (%d unique, %d rejected), %d unique files, objects %s; "
            "this run downloaded %d objects (%d bytes), %d were already stored. Manifest: %s",
            summary["interval_start"],
            summary["interval_end"],
            summary["rows"],
            summary["unique_rows"],
            summary["rejected_rows"],
            summary["unique_files"],
            summary["objects"],
            summary["run"].get("stored", 0),
            summary["run"].get("bytes", 0),
            summary["run"].get("present", 0),
            summary["manifest"],
        )
        return summary

    def _run_totals(self, context: Context) -> dict[str, int]:
        totals: dict[str, int] = {}
        if not self.download_task_id:
            return totals
        pulled = context["ti"].xcom_pull(task_ids=self.download_task_id)
        if isinstance(pulled, dict):
            pulled = [pulled]
        for stats in pulled or []:
            add_counts(totals, stats)
        return totals


def _batch_numbers(batch: Any) -> range:
    if not isinstance(batch, dict) or not {"first", "last"} <= batch.keys():
        raise DitioConfigError(f"Not a batch descriptor: {batch!r}", field="batch")
    return range(int(batch["first"]), int(batch["last"]) + 1)


def _optional_text(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def add_counts(totals: dict[str, int], counts: dict[str, int] | None) -> None:
    for name, value in (counts or {}).items():
        totals[name] = totals.get(name, 0) + int(value)
