"""The whole DAG, run by Airflow, against the sandbox API and an S3 server process."""

from __future__ import annotations

import hashlib
from collections import Counter

from helpers import HOUR, START, bucket_objects


def run_ok(stack, start=START, **conf):
    dagrun = stack.run(start, **conf)
    assert str(dagrun.state) == "success", stack.task_states(dagrun)
    return dagrun


def test_three_consecutive_hours_land_every_row_once_with_exact_bytes(stack):
    tenant = stack.sandbox.tenant
    for hour in range(3):
        run_ok(stack, START + hour * HOUR)

    expected = Counter()
    for hour in range(3):
        start = START + hour * HOUR
        for row in tenant.rows_between(start, start + HOUR):
            expected[(row["id"], row["collectionRef"], row["idRef"], start)] += 1
    seen = Counter()
    for hour in range(3):
        start = START + hour * HOUR
        for row in stack.manifest(start):
            seen[(row["id"], row["collectionRef"], row["idRef"], start)] += 1
    assert seen == expected
    assert all(count == 1 for count in seen.values())

    objects = stack.objects("images/")
    originals = {key.split("/")[1]: body for key, body in objects.items() if "/original." in key}
    assert set(originals) == {row["id"] for row in tenant.rows()}
    for file_id, body in originals.items():
        assert (
            hashlib.sha256(body).digest() == hashlib.sha256(tenant.original_bytes(file_id)).digest()
        ), file_id


def keys_and_bytes(stack):
    """The data a run leaves: everything but its own staging (each run stages separately)."""
    return {key: body for key, body in stack.objects().items() if not key.startswith("_staging/")}


def test_rerunning_an_interval_downloads_nothing_and_replaces_its_partition(stack):
    run_ok(stack)
    before = keys_and_bytes(stack)
    stack.sandbox.stats.reset()

    dagrun = run_ok(stack)

    assert stack.sandbox.stats.count("file") == 0
    assert keys_and_bytes(stack) == before
    partition = [k for k in before if k.startswith("manifests/dt=2026-04-12/hour=06/")]
    assert partition == ["manifests/dt=2026-04-12/hour=06/images.jsonl"]
    summary = dagrun.get_task_instance("publish_manifest").xcom_pull(task_ids="publish_manifest")
    assert summary["run"].get("stored", 0) == 0 and summary["run"]["present"] > 0
    assert summary["objects"] == {"stored": summary["unique_files"]}


def test_a_stale_object_in_the_partition_is_removed_by_the_next_run(stack, s3_client, bucket):
    stale = "manifests/dt=2026-04-12/hour=06/images.jsonl.gz"
    s3_client.put_object(Bucket=bucket, Key=stale, Body=b"old")
    run_ok(stack)
    assert stale not in stack.objects("manifests/")


def test_an_interval_with_no_rows_succeeds_with_an_empty_partition(stack):
    quiet = START - 5 * HOUR
    assert stack.sandbox.tenant.rows_between(quiet, quiet + HOUR) == []
    run_ok(stack, quiet)
    assert stack.manifest(quiet) == []
    assert stack.sandbox.stats.count("file") == 0


def test_mapped_downloads_never_exceed_max_map_length(stack, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    rows = stack.sandbox.tenant.rows_between(START, START + HOUR)
    assert len({row["id"] for row in rows}) > 3

    dagrun = run_ok(stack, files_per_batch=1)

    downloads = [ti for ti in dagrun.get_task_instances() if ti.task_id == "download_images"]
    assert len(downloads) == 3
    stored = {key.split("/")[1] for key in stack.objects("images/")}
    assert stored == {row["id"] for row in rows}


def test_params_choose_prefix_variants_and_filters(stack):
    tenant = stack.sandbox.tenant
    project = tenant.rows_between(START, START + HOUR)[0]["projectId"]

    run_ok(stack, prefix="tenant-a/", project_id=project, variants=["original", "thumbnail"])

    expected = tenant.rows_between(START, START + HOUR, project_id=project)
    manifest = stack.manifest(prefix="tenant-a/")
    assert sorted(r["idRef"] + r["id"] for r in manifest) == sorted(
        r["idRef"] + r["id"] for r in expected
    )
    assert {r["projectId"] for r in manifest} == {project}
    for row in manifest:
        assert set(row["objects"]) == {"original", "thumbnail"}
        assert row["objects"]["original"].startswith(f"s3://{stack.bucket}/tenant-a/images/")
    assert not stack.objects("images/")
    assert not stack.objects("manifests/")


def test_manifest_rows_keep_every_field_as_received(stack):
    run_ok(stack)
    by_identity = {
        (r["id"], r["collectionRef"], r["idRef"]): r
        for r in stack.sandbox.tenant.rows_between(START, START + HOUR)
    }
    for row in stack.manifest():
        objects, status = row.pop("objects"), row.pop("object_status")
        assert row == by_identity[(row["id"], row["collectionRef"], row["idRef"])]
        assert status == {"original": "stored"}
        key = objects["original"].split("/", 3)[3]
        assert key == f"images/{row['id']}/original{EXT[row['fileType']]}"


EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/heic": ".heic"}


def test_variables_set_bucket_and_prefix_and_params_override_them(stack, s3_client, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_DITIO_IMAGES_PREFIX", "from-variable")
    run_ok(stack)
    assert "from-variable/manifests/dt=2026-04-12/hour=06/images.jsonl" in stack.objects()

    other = f"{stack.bucket}-other"
    s3_client.create_bucket(
        Bucket=other, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
    )
    run_ok(stack, bucket=other, prefix="")
    assert "manifests/dt=2026-04-12/hour=06/images.jsonl" in bucket_objects(s3_client, other)


def test_a_missing_bucket_fails_at_once_and_says_how_to_set_it(stack, monkeypatch, capfd):
    monkeypatch.delenv("AIRFLOW_VAR_DITIO_IMAGES_BUCKET")

    dagrun = stack.run(START)

    assert stack.task_states(dagrun)["list_images"] == ["failed"]
    assert dagrun.get_task_instance("list_images").try_number == 1
    assert "ditio_images_bucket" in capfd.readouterr().out
    assert stack.sandbox.stats.count("list") == 0
