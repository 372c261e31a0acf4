"""
### ditio_images

Hourly inventory of every image attached in Ditio projects (feed posts, alerts, checklist
submissions), with the image bytes, in S3.

Each run covers its data interval `[data_interval_start, data_interval_end)`:

1. **list_images** pages `GET /v1/images` with `ModifiedSince`/`ModifiedBefore` = the interval,
   stages the rows (resumable after a crash) and plans download batches;
2. **download_images** (mapped, one task per batch group) streams the files not yet stored
   into `images/{file_id}/{variant}{ext}`;
3. **publish_manifest** writes `manifests/dt=YYYY-MM-DD/hour=HH/images.jsonl`, replacing the
   partition, plus `rejects/` and `runs/` summaries.

Configure the `ditio_default` (http) and `aws_default` (aws) connections and the Variable
`ditio_images_bucket`; every param below can be set per run from the trigger form.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from ditio_images.operators import (
    DitioDownloadBatchOperator,
    DitioListImagesOperator,
    DitioPublishManifestOperator,
)

SOURCES = ["feed", "alert", "checklist"]
VARIANTS = ["original", "large", "medium", "thumbnail"]

# Environment knobs read at parse time are plain numbers, so parsing stays free of I/O.
RETRIES = int(os.environ.get("DITIO_IMAGES_RETRIES", "4"))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("DITIO_IMAGES_RETRY_DELAY_SECONDS", "60")))
MAX_RETRY_DELAY = timedelta(minutes=float(os.environ.get("DITIO_IMAGES_MAX_RETRY_MINUTES", "30")))

PARAMS = {
    "project_id": Param(
        None,
        type=["null", "string"],
        title="Project id",
        description="Only this Ditio project (ProjectId). Empty: every project the client sees.",
    ),
    "company_id": Param(
        None,
        type=["null", "string"],
        title="Company id",
        description="Only data of this project-company (CompanyId). Empty: no company filter.",
    ),
    "sources": Param(
        SOURCES,
        type="array",
        items={"type": "string", "enum": SOURCES},
        minItems=1,
        uniqueItems=True,
        title="Sources",
        description="Which parents to include: feed posts, alerts, checklist submissions.",
    ),
    "require_geo": Param(
        False,
        type="boolean",
        title="Only images with GPS",
        description="Drop images that have no position of their own or of their parent.",
    ),
    "own_company_only": Param(
        False,
        type="boolean",
        title="Own company's data only",
        description="Leave out records merely shared with the calling company.",
    ),
    "exclude_subsidiaries": Param(
        False,
        type="boolean",
        title="Exclude subsidiaries",
        description="For parent-company clients: leave out subsidiaries' data.",
    ),
    "chunk_limit": Param(
        2500,
        type="integer",
        minimum=1,
        maximum=10000,
        title="Page size",
        description="Parent records per API page (ChunkLimit), 1 to 10000.",
    ),
    "variants": Param(
        ["original"],
        type="array",
        items={"type": "string", "enum": VARIANTS},
        minItems=1,
        uniqueItems=True,
        title="Variants",
        description="Which renditions to store: original, large (1980), medium (640), "
        "thumbnail (128).",
    ),
    "bucket": Param(
        None,
        type=["null", "string"],
        title="S3 bucket",
        description="Overrides the Variable ditio_images_bucket for this run.",
    ),
    "prefix": Param(
        None,
        type=["null", "string"],
        title="S3 prefix",
        description="Overrides the Variable ditio_images_prefix for this run (e.g. ditio/prod).",
    ),
    "files_per_batch": Param(
        2000,
        type="integer",
        minimum=1,
        maximum=100000,
        title="Files per batch",
        description="Unique files per download batch (batches are grouped to fit max_map_length).",
    ),
    "downloads_in_flight": Param(
        16,
        type="integer",
        minimum=1,
        maximum=128,
        title="Downloads in flight",
        description="Files streaming at once in each download task.",
    ),
    "part_size_mb": Param(
        8,
        type="integer",
        minimum=5,
        maximum=512,
        title="Multipart part size (MiB)",
        description="Bodies larger than this are uploaded as multipart uploads of this part size.",
    ),
    "part_concurrency": Param(
        2,
        type="integer",
        minimum=1,
        maximum=16,
        title="Parts in flight",
        description="Parts of one large file uploaded at once.",
    ),
    "gzip_manifest": Param(
        False,
        type="boolean",
        title="Gzip the manifest",
        description="Write images.jsonl.gz instead of images.jsonl.",
    ),
}

STORAGE = {
    "bucket": "{{ params.bucket or var.value.get('ditio_images_bucket', '') }}",
    "prefix": "{{ params.prefix if params.prefix is not none "
    "else var.value.get('ditio_images_prefix', '') }}",
    "part_size_mb": "{{ params.part_size_mb }}",
    "part_concurrency": "{{ params.part_concurrency }}",
}

with DAG(
    dag_id="ditio_images",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=4,
    render_template_as_native_obj=True,
    params=PARAMS,
    doc_md=__doc__,
    tags=["ditio", "images", "s3"],
    default_args={
        "owner": "data-ops",
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": MAX_RETRY_DELAY,
    },
) as dag:
    list_images = DitioListImagesOperator(
        task_id="list_images",
        project_id="{{ params.project_id }}",
        company_id="{{ params.company_id }}",
        sources="{{ params.sources }}",
        require_geo="{{ params.require_geo }}",
        own_company_only="{{ params.own_company_only }}",
        exclude_subsidiaries="{{ params.exclude_subsidiaries }}",
        chunk_limit="{{ params.chunk_limit }}",
        variants="{{ params.variants }}",
        files_per_batch="{{ params.files_per_batch }}",
        **STORAGE,
    )
    download_images = DitioDownloadBatchOperator.partial(
        task_id="download_images",
        variants="{{ params.variants }}",
        downloads_in_flight="{{ params.downloads_in_flight }}",
        **STORAGE,
    ).expand(batch=list_images.output)
    publish_manifest = DitioPublishManifestOperator(
        task_id="publish_manifest",
        trigger_rule="none_failed",
        download_task_id="download_images",
        gzip="{{ params.gzip_manifest }}",
        **STORAGE,
    )
    list_images >> download_images >> publish_manifest
