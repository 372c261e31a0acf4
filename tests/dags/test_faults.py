"""Faults on every side, with the DAG run by Airflow: nothing lost, nothing damaged."""

from __future__ import annotations

import hashlib
import json

import pytest
from dagstack import make_stack
from helpers import HOUR, START, read_jsonl


def run(stack, **conf):
    dagrun = stack.run(START, **conf)
    return dagrun, stack.task_states(dagrun)


def assert_complete(stack):
    tenant = stack.sandbox.tenant
    expected = {
        (r["id"], r["collectionRef"], r["idRef"]) for r in tenant.rows_between(START, START + HOUR)
    }
    manifest = stack.manifest()
    assert {(r["id"], r["collectionRef"], r["idRef"]) for r in manifest} == expected
    assert len(manifest) == len(expected)
    originals = {k: v for k, v in stack.objects("images/").items() if "/original." in k}
    assert len(originals) == len({file_id for file_id, _, _ in expected})
    for key, body in originals.items():
        file_id = key.split("/")[1]
        assert (
            hashlib.sha256(body).digest() == hashlib.sha256(tenant.original_bytes(file_id)).digest()
        )


def try_number(dagrun, task_id):
    return dagrun.get_task_instance(task_id).try_number


def test_a_mix_of_list_token_and_file_faults_still_lands_everything(stack):
    faults = stack.sandbox.faults
    faults.add("token", "status", nth=1, status=500)
    faults.add("list", "status", nth=1, status=503)
    faults.add("list", "status", nth=3, status=429, retry_after=0.2)
    faults.add("list", "reset", nth=5)
    faults.add("file", "status", nth=2, status=502)
    faults.add("file", "status", nth=4, status=429, retry_after_date=True, retry_after=1)
    faults.add("file", "reset", nth=6, at="headers")
    faults.add("file", "truncate", nth=8)
    faults.add("file", "wrong_size", nth=10, delta=-7)
    faults.add("file", "expire_tokens", nth=12)
    faults.add("file", "stall", nth=14, seconds=8)

    dagrun, states = run(stack, chunk_limit=3)

    assert str(dagrun.state) == "success", states
    assert try_number(dagrun, "list_images") == 1
    assert_complete(stack)
    assert stack.sandbox.stats.count("token") >= 3


def test_a_500_storm_longer_than_the_budget_ends_green_through_airflow_retries(stack):
    stack.sandbox.faults.add("list", "status", start=1, end=4, status=500)

    dagrun, states = run(stack)

    assert str(dagrun.state) == "success", states
    assert try_number(dagrun, "list_images") == 2
    assert_complete(stack)


def test_a_listing_that_fails_after_page_k_resumes_at_page_k_plus_one(stack):
    stack.sandbox.faults.add("list", "status", start=4, end=6, status=500)

    dagrun, states = run(stack, chunk_limit=2)

    assert str(dagrun.state) == "success", states
    assert try_number(dagrun, "list_images") == 2
    requests = [e for e in stack.sandbox.stats.log("list") if e["status"] == 200]
    tokens = ["ContinuationToken" in json.dumps(e["query"]) for e in requests]
    assert tokens.count(False) == 1, "the listing started over instead of resuming"
    assert_complete(stack)


def test_a_truncated_body_on_every_try_fails_only_downloads_and_stores_nothing(stack):
    rows = stack.sandbox.tenant.rows_between(START, START + HOUR)
    victim = rows[0]["id"]
    stack.sandbox.faults.add("file", "truncate", file_id=victim)
    stack.configure(max_attempts=2)

    dagrun, states = run(stack)

    assert states["list_images"] == ["success"]
    assert states["download_images"] == ["failed"]
    assert not [key for key in stack.objects() if f"images/{victim}/" in key]
    assert not stack.s3.list_multipart_uploads(Bucket=stack.bucket).get("Uploads")


def test_a_403_fails_at_once_and_names_the_filter(
    request, monkeypatch, dag, s3_client, bucket, capfd
):
    project = "65a0000000000000000000ff"
    stack = make_stack(
        request,
        monkeypatch,
        dag,
        s3_client,
        bucket,
        sandbox_options={"forbidden_projects": [project]},
    )

    dagrun, states = run(stack, project_id=project)

    assert states["list_images"] == ["failed"]
    assert try_number(dagrun, "list_images") == 1
    assert f"ProjectId={project}" in capfd.readouterr().out
    assert stack.sandbox.stats.count("list") == 1


def test_a_disabled_client_fails_at_once_after_one_refresh(stack, capfd):
    stack.sandbox.revoke_client()

    dagrun, states = run(stack)

    assert states["list_images"] == ["failed"]
    assert try_number(dagrun, "list_images") == 1
    assert stack.sandbox.stats.count("list") == 2
    assert "disabled" in capfd.readouterr().out


def test_a_paging_loop_fails_loudly_instead_of_spinning(stack, capfd):
    stack.sandbox.faults.add("list", "repeat_token", nth=2)

    dagrun, states = run(stack, chunk_limit=2)

    assert states["list_images"] == ["failed"]
    assert try_number(dagrun, "list_images") == 1
    assert "already returned" in capfd.readouterr().out


def test_bad_rows_are_rejected_counted_and_kept(request, monkeypatch, dag, s3_client, bucket):
    stack = make_stack(request, monkeypatch, dag, s3_client, bucket, bad_rows=True)
    bad = stack.sandbox.tenant.bad_row_count(START, START + HOUR)
    assert bad > 0

    dagrun, states = run(stack)

    assert str(dagrun.state) == "success", states
    rejects = read_jsonl(stack.objects("rejects/")["rejects/dt=2026-04-12/hour=06/rejects.jsonl"])
    assert len(rejects) == bad and all(r["reason"] and "row" in r for r in rejects)
    summary = json.loads(stack.objects("runs/")["runs/dt=2026-04-12/hour=06/summary.json"])
    assert summary["rejected_rows"] == bad
    good = stack.sandbox.tenant.rows_between(START, START + HOUR)
    assert len(stack.manifest()) == len({(r["id"], r["collectionRef"], r["idRef"]) for r in good})


RERUNS = {
    "everything": ["list", "download", "publish"],
    "downloads_only": ["download", "download"],
    "publish_only": ["publish", "publish"],
    "publish_then_download": ["publish", "download", "publish"],
}


@pytest.mark.parametrize("sequence", RERUNS.values(), ids=RERUNS.keys())
def test_running_tasks_of_a_finished_interval_again_changes_nothing(stack, sequence):
    from ditio_images.downloader import BatchDownloader
    from ditio_images.hooks import DitioHook
    from ditio_images.layout import Layout
    from ditio_images.listing import (
        ListingRequest,
        list_interval,
        plan_downloads,
        read_batch,
        run_staging,
    )
    from ditio_images.publish import publish_interval
    from ditio_images.s3store import S3Store

    dagrun, states = run(stack)
    assert str(dagrun.state) == "success", states
    before = stack.objects()
    stack.sandbox.stats.reset()

    hook = DitioHook()
    layout = Layout.create(stack.bucket, "")
    store = S3Store(stack.s3, stack.bucket, policy=hook.settings.policy)
    client = hook.get_conn()
    staging = run_staging(layout, START, dagrun.run_id)

    def list_again():
        request = ListingRequest(START, START + HOUR)
        list_interval(client, store, layout, request, staging=staging)
        plan_downloads(
            store,
            layout,
            START,
            variants=["original"],
            files_per_batch=2000,
            max_groups=1024,
            staging=staging,
        )

    def download_again():
        downloader = BatchDownloader(
            client=client, store=store, layout=layout, policy=hook.settings.policy
        )
        result = downloader.run(read_batch(store, staging, 1), ["original"])
        store.put_json(staging.results(1), result.to_json())

    steps = {
        "list": list_again,
        "download": download_again,
        "publish": lambda: publish_interval(store, layout, START, START + HOUR, staging=staging),
    }
    for name in sequence:
        steps[name]()

    assert stack.objects() == before
    assert stack.sandbox.stats.count("file") == 0
