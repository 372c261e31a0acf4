"""Publish an interval: its manifest partition, its rejects and a run summary.

The manifest has one line per unique row of the interval, every field as received plus
``objects`` (variant to ``s3://`` URI) and ``object_status`` (variant to what happened). It is
written to a single key and completed atomically; whatever else sat in the partition is then
removed, so a re-run replaces the partition instead of adding to it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from ditio_images.exceptions import DitioConfigError
from ditio_images.layout import Layout
from ditio_images.listing import Staging, iter_staged_rows
from ditio_images.rows import reject_reason, row_identity
from ditio_images.s3store import S3Store, gzip_stream, json_line
from ditio_images.seen import DiskIndex

log = logging.getLogger(__name__)

MANIFEST_TYPE = "application/x-ndjson"
STAGING_RETENTION = timedelta(days=1)


def publish_interval(
    store: S3Store,
    layout: Layout,
    start: datetime,
    end: datetime,
    *,
    gzip: bool = False,
    staging: Staging | None = None,
) -> dict[str, Any]:
    """Write the interval's manifest, rejects and summary from staging; return the summary.

    Everything written describes the interval's state, not the run, so publishing the same
    staging again writes identical objects.
    """
    staging = staging or Staging(layout.staging_folder(start))
    plan = store.get_json(staging.plan)
    if not isinstance(plan, dict):
        raise DitioConfigError(
            f"No download plan under {layout.uri(staging.folder)}; run the listing task first."
        )
    summary = _empty_summary(layout, start, end, plan)
    manifest_key = layout.manifest_key(start, gzip=gzip)
    # Stale keys go before the new manifest is written, never after: a publish of the same
    # hour running at the same moment can then at worst leave a second file, never none.
    _replace_folder(store, layout.manifest_folder(start), keep=manifest_key)
    with DiskIndex() as results:
        _load_results(store, staging, plan, results, summary["objects"])
        written = _write_manifest(store, layout, staging, plan, results, manifest_key, gzip)
    summary["manifest_rows"] = written
    summary["manifest"] = layout.uri(manifest_key)
    _publish_rejects(store, layout, staging, start, plan)
    store.put_json(layout.summary_key(start), summary)
    pruned = prune_staging(store, layout, start, keep=staging)
    if pruned:
        log.info("Removed %d staging objects of earlier runs of this hour", pruned)
    return summary


def prune_staging(
    store: S3Store,
    layout: Layout,
    start: datetime,
    *,
    keep: Staging,
    older_than: timedelta = STAGING_RETENTION,
) -> int:
    """Delete other runs' staging of this hour once nothing in it changed for ``older_than``.

    A run that is still working keeps writing to its folder, so only abandoned or long
    finished runs qualify; a lifecycle rule on ``_staging/`` remains the backstop.
    """
    root = layout.staging_folder(start)
    newest: dict[str, datetime] = {}
    keys: dict[str, list[str]] = {}
    for key, modified in store.list_objects(root):
        folder = root + key[len(root) :].split("/", 1)[0] + "/"
        if folder == keep.folder:
            continue
        keys.setdefault(folder, []).append(key)
        newest[folder] = max(modified, newest.get(folder, modified))
    cutoff = datetime.now(UTC) - older_than
    stale = [key for folder, found in keys.items() if newest[folder] < cutoff for key in found]
    return store.delete_keys(stale) if stale else 0


def _empty_summary(
    layout: Layout, start: datetime, end: datetime, plan: dict[str, Any]
) -> dict[str, Any]:
    return {
        "interval_start": start.astimezone(UTC).isoformat(),
        "interval_end": end.astimezone(UTC).isoformat(),
        "bucket": layout.bucket,
        "prefix": layout.prefix,
        "rows": plan["rows"],
        "unique_rows": plan["unique_rows"],
        "duplicate_rows": plan["duplicate_rows"],
        "rejected_rows": plan["rejected_rows"],
        "rejects": layout.uri(layout.rejects_key(start)) if plan["rejected_rows"] else None,
        "unique_files": plan["unique_files"],
        "variants": plan["variants"],
        "objects": {},
    }


def _load_results(
    store: S3Store,
    staging: Staging,
    plan: dict[str, Any],
    results: DiskIndex,
    counts: dict[str, int],
) -> None:
    for number in range(1, plan["batches"] + 1):
        batch = store.get_json(staging.results(number))
        if not isinstance(batch, dict):
            raise DitioConfigError(
                f"Download batch {number} has no results yet; clear and re-run its download task."
            )
        for file_id, outcome in batch["files"].items():
            results.put(file_id, json.dumps(outcome))
            for status in outcome["status"].values():
                counts[status] = counts.get(status, 0) + 1


def _write_manifest(
    store: S3Store,
    layout: Layout,
    staging: Staging,
    plan: dict[str, Any],
    results: DiskIndex,
    key: str,
    gzip: bool,
) -> int:
    written = 0

    def lines() -> Any:
        nonlocal written
        with DiskIndex() as seen:
            for row in iter_staged_rows(store, staging, plan["pages"]):
                if reject_reason(row) or not seen.add(row_identity(row)):
                    continue
                written += 1
                yield json_line(_manifest_row(row, results.get(row["id"]), layout))

    chunks = gzip_stream(lines()) if gzip else lines()
    store.upload_stream(key, chunks, content_type=MANIFEST_TYPE)
    return written


def _manifest_row(row: dict[str, Any], outcome_json: str | None, layout: Layout) -> dict[str, Any]:
    outcome = json.loads(outcome_json) if outcome_json else {"objects": {}, "status": {}}
    out = dict(row)
    out["objects"] = {variant: layout.uri(key) for variant, key in outcome["objects"].items()}
    out["object_status"] = outcome["status"]
    return out


def _replace_folder(store: S3Store, folder: str, *, keep: str | None) -> None:
    stale = [key for key in store.list_keys(folder) if key != keep]
    if stale:
        store.delete_keys(stale)
        log.info("Removed %d stale objects from %s", len(stale), folder)


def _publish_rejects(
    store: S3Store, layout: Layout, staging: Staging, start: datetime, plan: dict[str, Any]
) -> None:
    key = layout.rejects_key(start)
    if plan["rejected_rows"]:
        source = {"Bucket": layout.bucket, "Key": staging.rejects}
        store.call("copy_object", Key=key, CopySource=source)
        log.warning("%d rows rejected; see %s", plan["rejected_rows"], layout.uri(key))
    _replace_folder(
        store, layout.rejects_folder(start), keep=key if plan["rejected_rows"] else None
    )
    return int(plan["rejected_rows"])
