"""The whole DAG, run by Airflow, against the sandbox API and an S3 server process."""

from __future__ import annotations

import hashlib
from collections import Counter

from helpers import HOUR, START


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
        assert hashlib.sha256(body).digest() == hashlib.sha256(
            tenant.original_bytes(file_id)
        ).digest(), file_id
