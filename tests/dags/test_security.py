"""Security properties of the sync, shown on the real DAG against the sandbox and a moto S3.

A second file server on another loopback address stands in for a foreign host: it serves the
tenant's bytes, records every request with its Authorization header, and can answer with an
endless chunked body.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import pytest
import requests
from dagstack import Stack, make_stack
from helpers import HOUR, START

FOREIGN_HOST = "127.0.0.2"
BLOB_HOST = "127.0.0.3"
ENDLESS_BYTES = 64 * 1024**2
CHUNK = 64 * 1024
DATE = r"dt=\d{4}-\d\d-\d\d/hour=\d\d"
CONTRACT_KEY = (
    r"(images/[0-9A-Za-z][0-9A-Za-z_-]*/(original|large|medium|thumbnail)\.[a-z0-9]+"
    rf"|manifests/{DATE}/images\.jsonl(\.gz)?"
    rf"|rejects/{DATE}/rejects\.jsonl"
    rf"|runs/{DATE}/summary\.json"
    rf"|_staging/{DATE}/run=[0-9a-f]{{16}}/([a-z]+/)?[0-9a-z_]+\.(json|jsonl|jsonl\.gz))"
)


class ForeignHost:
    """A file server on ``127.0.0.2`` that records who asked for what, with which header.

    :param endless: answer every request with a chunked body (no Content-Length) of
        ``ENDLESS_BYTES`` that only ends early when the client hangs up.
    """

    def __init__(self, *, endless: bool = False) -> None:
        self.endless = endless
        self.tenant: Any = None
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((FOREIGN_HOST, 0), _ForeignHandler)
        self._server.daemon_threads = True
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def netloc(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> ForeignHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    def wait_for_answers(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The request log once ``count`` answers finished (a hung-up body ends with an error)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        return list(self.requests)


class _ForeignHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        owner: ForeignHost = self.server.owner  # type: ignore[attr-defined]
        file_id = urlsplit(self.path).path.rpartition("/")[2]
        entry = {"file_id": file_id, "authorization": self.headers.get("Authorization")}
        self.close_connection = True
        if owner.endless:
            entry["sent"] = self._send_endless()
        else:
            entry["sent"] = self._send_file(owner.tenant, file_id)
        owner.record(entry)

    def _send_file(self, tenant: Any, file_id: str) -> int:
        spec = tenant.file_spec(file_id) if tenant is not None else None
        body = tenant.original_bytes(file_id) if spec else b"not found"
        self.send_response(200 if spec else 404)
        self.send_header("Content-Type", spec.content_type if spec else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        return len(body)

    def _send_endless(self) -> int:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        piece = b"%x\r\n%s\r\n" % (CHUNK, b"\xff" * CHUNK)
        sent = 0
        try:
            while sent < ENDLESS_BYTES:
                self.wfile.write(piece)
                sent += CHUNK
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        return sent

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def foreign(request) -> ForeignHost:
    endless = getattr(request, "param", False)
    host = ForeignHost(endless=endless).start()
    request.addfinalizer(host.stop)
    return host


def record_tokens(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every access token the sandbox issues from now on, in order."""
    issued: list[str] = []
    store = stack.sandbox.app.tokens
    issue = store.issue

    def recording_issue(scopes: frozenset[str]) -> str:
        token = issue(scopes)
        issued.append(token)
        return token

    monkeypatch.setattr(store, "issue", recording_issue)
    return issued


def run_ok(stack: Stack, **conf: Any) -> Any:
    dagrun = stack.run(START, **conf)
    assert str(dagrun.state) == "success", stack.task_states(dagrun)
    return dagrun


def hour_file_ids(stack: Stack) -> set[str]:
    return {row["id"] for row in stack.sandbox.tenant.rows_between(START, START + HOUR)}


def summary(stack: Stack, prefix: str = "") -> dict[str, Any]:
    key = f"{prefix}runs/dt={START:%Y-%m-%d}/hour={START:%H}/summary.json"
    return json.loads(stack.objects(key)[key])


def statuses(stack: Stack) -> dict[str, dict[str, str]]:
    return {row["id"]: row["object_status"] for row in stack.manifest()}


def image_keys(stack: Stack, file_id: str) -> list[str]:
    return list(stack.objects(f"images/{file_id}/"))


def readable_objects(stack: Stack) -> Iterator[tuple[str, bytes]]:
    """Every object in the bucket, gzipped ones unpacked so their text can be searched."""
    for key, body in stack.objects().items():
        yield key, gzip.decompress(body) if key.endswith(".gz") else body


def xcom_values(run_id: str) -> list[tuple[str, Any]]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(XComModel.task_id, XComModel.value).where(
        XComModel.dag_id == "ditio_images", XComModel.run_id == run_id
    )
    with create_session() as session:
        return [(task_id, value) for task_id, value in session.execute(query)]


def airflow_home_files() -> Iterator[tuple[Path, bytes]]:
    """Every file under AIRFLOW_HOME: the metadata database (and its WAL) and any task logs."""
    for path in Path(os.environ["AIRFLOW_HOME"]).rglob("*"):
        if path.is_file():
            yield path, path.read_bytes()


def spellings(secret: str) -> set[bytes]:
    return {form.encode() for form in (secret, quote(secret, safe=""), quote_plus(secret))}


# -- 1. the bearer token only goes to trusted hosts --------------------------------------------


def test_files_on_an_untrusted_host_are_refused_and_recorded(
    request, monkeypatch, dag, s3_client, bucket, foreign
):
    stack = make_stack(request, monkeypatch, dag, s3_client, bucket, foreign_host=foreign.netloc)
    foreign.tenant = stack.sandbox.tenant
    remote = hour_file_ids(stack) & stack.sandbox.tenant.foreign_file_ids()
    assert remote, "the tenant should place some files of the hour on the foreign host"

    run_ok(stack)

    assert foreign.requests == []
    found = statuses(stack)
    for file_id in remote:
        assert found[file_id] == {"original": "refused"}
        assert image_keys(stack, file_id) == []
    assert summary(stack)["objects"].get("refused") == len(remote)
    local = hour_file_ids(stack) - remote
    assert all(found[file_id] == {"original": "stored"} for file_id in local)


@pytest.mark.parametrize(
    ("setting", "sends_token"),
    [("anonymous", False), ("trusted", True)],
    ids=["untrusted_downloads=anonymous", "listed in trusted_hosts"],
)
def test_an_untrusted_host_gets_the_token_only_once_trusted(
    setting, sends_token, request, monkeypatch, dag, s3_client, bucket, foreign
):
    stack = make_stack(request, monkeypatch, dag, s3_client, bucket, foreign_host=foreign.netloc)
    foreign.tenant = tenant = stack.sandbox.tenant
    issued = record_tokens(stack, monkeypatch)
    if setting == "anonymous":
        stack.configure(untrusted_downloads="anonymous")
    else:
        stack.configure(trusted_hosts=[foreign.netloc])
    remote = hour_file_ids(stack) & tenant.foreign_file_ids()

    run_ok(stack)

    seen = foreign.wait_for_answers(len(remote))
    assert {entry["file_id"] for entry in seen} == remote
    headers = {entry["authorization"] for entry in seen}
    if sends_token:
        assert headers <= {f"Bearer {token}" for token in issued}
    else:
        assert headers == {None}
    found = statuses(stack)
    for file_id in remote:
        assert found[file_id] == {"original": "stored"}
        (key,) = image_keys(stack, file_id)
        assert stack.objects(key)[key] == tenant.original_bytes(file_id)


# -- 2. a redirect to blob storage that rejects the token ----------------------------------------


@pytest.mark.parametrize("blob_host", [BLOB_HOST, None], ids=["blob on another host", "same host"])
def test_redirected_files_arrive_without_the_token_at_the_blob_host(
    blob_host, request, monkeypatch, dag, s3_client, bucket
):
    options = {"redirect_files": True, "blob_host": blob_host}
    stack = make_stack(request, monkeypatch, dag, s3_client, bucket, sandbox_options=options)
    tenant = stack.sandbox.tenant
    issued = record_tokens(stack, monkeypatch)

    run_ok(stack, variants=["original", "thumbnail"])

    blob_log = stack.sandbox.stats.log("blob")
    assert blob_log and all(not entry["has_authorization"] for entry in blob_log)
    assert {entry["status"] for entry in blob_log} == {200}
    assert {entry["status"] for entry in stack.sandbox.stats.log("file")} == {302}
    for file_id in hour_file_ids(stack):
        key = next(key for key in image_keys(stack, file_id) if "/original." in key)
        assert stack.objects(key)[key] == tenant.original_bytes(file_id)
        assert len(image_keys(stack, file_id)) == 2

    # The blob host really refuses a request that carries the token.
    file_url = stack.manifest()[0]["downloadUrl"]
    bearer = {"Authorization": f"Bearer {issued[-1]}"}
    hop = requests.get(file_url, headers=bearer, allow_redirects=False, timeout=5)
    assert requests.get(hop.headers["Location"], headers=bearer, timeout=5).status_code == 400


# -- 3. and 4. names and ids from the API never shape a key --------------------------------------


def test_hostile_file_names_only_produce_contract_keys(
    request, monkeypatch, dag, s3_client, bucket
):
    stack = make_stack(request, monkeypatch, dag, s3_client, bucket, hostile_names=True)
    prefix = "ditio/prod/"
    expected = stack.sandbox.tenant.rows_between(START, START + HOUR)
    assert any(not row["fileName"].startswith("uploaded-") for row in expected)

    run_ok(stack, prefix=prefix, variants=["original", "large", "medium", "thumbnail"])

    pattern = re.compile(rf"{re.escape(prefix)}{CONTRACT_KEY}")
    keys = list(stack.objects())
    assert keys and [key for key in keys if not pattern.fullmatch(key)] == []
    names = {
        (row["id"], row["idRef"]): (row["fileName"], row["fileNameOriginal"])
        for row in stack.manifest(prefix=prefix)
    }
    assert names == {
        (row["id"], row["idRef"]): (row["fileName"], row["fileNameOriginal"]) for row in expected
    }


def test_rows_with_path_like_ids_are_rejected_with_their_reason(
    request, monkeypatch, dag, s3_client, bucket
):
    stack = make_stack(
        request, monkeypatch, dag, s3_client, bucket, hours=1, parents_per_hour=30, bad_rows=True
    )
    bad = stack.sandbox.tenant.bad_rows_between(START, START + HOUR)
    bad_ids = [row.get("id") for row in bad if isinstance(row, dict)]
    assert {"../../x", "65a0/../0000000000000001"} <= set(bad_ids)

    run_ok(stack)

    rejects_key = f"rejects/dt={START:%Y-%m-%d}/hour={START:%H}/rejects.jsonl"
    rejects = [json.loads(line) for line in stack.objects(rejects_key)[rejects_key].splitlines()]
    assert sorted(map(json.dumps, (entry["row"] for entry in rejects))) == sorted(
        map(json.dumps, bad)
    )
    for entry in rejects:
        if isinstance(entry["row"], dict) and "/" in str(entry["row"].get("id")):
            assert "'id' is not a plain identifier" in entry["reason"]
    assert summary(stack)["rejected_rows"] == len(bad)
    keys = list(stack.objects())
    assert [key for key in keys if ".." in key] == []
    assert all(re.fullmatch(CONTRACT_KEY, key) for key in keys)


# -- 5. secrets stay out of logs, XCom and the bucket --------------------------------------------


def test_secret_and_tokens_appear_in_no_log_xcom_or_object(
    request, monkeypatch, dag, s3_client, bucket, foreign, caplog, capfd
):
    client_secret = "client-secret-1f6c0be2d8a94e57"
    options = {"client_secret": client_secret, "redirect_files": True, "blob_host": BLOB_HOST}
    stack = make_stack(
        request,
        monkeypatch,
        dag,
        s3_client,
        bucket,
        sandbox_options=options,
        foreign_host=foreign.netloc,
    )
    issued = record_tokens(stack, monkeypatch)
    # Error bodies echo the secret and the token, and a file request finds every token
    # expired, so another token is fetched mid-run.
    faults = stack.sandbox.faults
    echo = {"error": "server_error", "error_description": f"cannot check {client_secret} now"}
    faults.add("token", "status", nth=1, status=500, body=json.dumps(echo))
    issue = stack.sandbox.app.tokens.issue

    def issue_and_echo(scopes: frozenset[str]) -> str:
        token = issue(scopes)
        if len(issued) == 1:
            faults.add("list", "status", nth=1, status=500, body=f"upstream refused {token}")
        return token

    monkeypatch.setattr(stack.sandbox.app.tokens, "issue", issue_and_echo)
    faults.add("file", "expire_tokens", nth=3)
    caplog.set_level(logging.DEBUG, logger="ditio_images")

    dagrun = run_ok(stack, variants=["original", "thumbnail"])

    assert len(issued) >= 3, "expected a token per task and one refresh"
    assert stack.sandbox.stats.log("token")[0]["status"] == 500
    assert stack.sandbox.stats.log("list")[0]["status"] == 500
    out, err = capfd.readouterr()
    logs = "\n".join([out, err, caplog.text])
    assert "ditio_images.operators" in out, "the task logs should reach stdout"
    assert "Fetched an access token" in logs and "Listed page" in logs
    values = xcom_values(dagrun.run_id)
    assert {task_id for task_id, _ in values} >= {"list_images", "publish_manifest"}
    stored = dict(readable_objects(stack))
    home = dict(airflow_home_files())

    for secret in (client_secret, *issued):
        for form in spellings(secret):
            assert form.decode() not in logs
            assert form.decode() not in json.dumps(values, default=str)
            assert [key for key, body in stored.items() if form in body] == []
            assert [str(path) for path, body in home.items() if form in body] == []


def test_every_token_and_the_secret_are_registered_with_the_secrets_masker(
    request, monkeypatch, dag, s3_client, bucket
):
    from airflow.sdk._shared.secrets_masker import redact

    client_secret = "client-secret-5a1d93c07e2b4f68"
    options = {"client_secret": client_secret}
    stack = make_stack(request, monkeypatch, dag, s3_client, bucket, sandbox_options=options)
    issued = record_tokens(stack, monkeypatch)
    stack.sandbox.faults.add("file", "expire_tokens", nth=2)
    assert redact(f"token {client_secret}") == f"token {client_secret}"

    run_ok(stack)

    assert len(issued) >= 3
    for secret in (client_secret, *issued):
        assert redact(f"Authorization: Bearer {secret}") == "Authorization: Bearer ***"
        assert redact({"detail": f"echoed {secret}"}) == {"detail": "echoed ***"}


# -- 6. oversized bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("foreign", [True], indirect=True, ids=["endless chunked"])
def test_oversized_bodies_leave_no_object_and_the_run_succeeds(
    request, monkeypatch, dag, s3_client, bucket, foreign
):
    from ditio_sandbox import Tenant

    limit = 150_000
    probe = Tenant(seed=7, start=START, hours=3, foreign_host=foreign.netloc)
    hour = {row["id"] for row in probe.rows_between(START, START + HOUR)}
    huge_id = min(hour - probe.foreign_file_ids())
    stack = make_stack(
        request,
        monkeypatch,
        dag,
        s3_client,
        bucket,
        foreign_host=foreign.netloc,
        huge_files={huge_id: 3 * 1024**3},
    )
    stack.configure(max_file_bytes=limit, trusted_hosts=[foreign.netloc])
    tenant = stack.sandbox.tenant
    remote = hour_file_ids(stack) & tenant.foreign_file_ids()
    assert remote and huge_id in hour_file_ids(stack) - remote

    run_ok(stack)

    found = statuses(stack)
    too_large = set()
    for file_id in hour_file_ids(stack):
        if file_id in remote or tenant.file_spec(file_id).size > limit:
            too_large.add(file_id)
            assert found[file_id] == {"original": "too_large"}
            assert image_keys(stack, file_id) == []
        else:
            assert found[file_id] == {"original": "stored"}
    assert summary(stack)["objects"].get("too_large") == len(too_large)
    # Neither the announced 3 GiB nor the unannounced endless bodies were read to the end.
    (huge,) = [e for e in stack.sandbox.stats.log("file") if e["path"].endswith(huge_id)]
    assert huge["bytes_sent"] < 64 * 1024**2
    endless = foreign.wait_for_answers(len(remote))
    assert len(endless) == len(remote)
    assert all(entry["sent"] < ENDLESS_BYTES for entry in endless)
