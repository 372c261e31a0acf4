from __future__ import annotations

import socket
import time
from email.utils import parsedate_to_datetime

import pytest
import requests

from ditio_sandbox import Faults, Sandbox

TIMEOUT = 10


def first_row(sandbox: Sandbox) -> dict:
    return sandbox.tenant.rows()[0]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 400, 403, 404])
def test_status_fault_fires_on_the_nth_request_only(api, sandbox: Sandbox, status: int) -> None:
    sandbox.faults.add("list", "status", nth=2, status=status)
    codes = [api.page({}).status_code for _ in range(3)]
    assert codes == [200, status, 200]


def test_status_fault_window_covers_a_range(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("file", "status", start=2, end=3, status=503)
    url = first_row(sandbox)["downloadUrl"]
    assert [api.get(url).status_code for _ in range(4)] == [200, 503, 503, 200]


def test_429_carries_retry_after_seconds_or_a_date(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("list", "status", nth=1, status=429, retry_after=3)
    sandbox.faults.add("list", "status", nth=2, status=429, retry_after=30, retry_after_date=True)
    assert api.page({}).headers["Retry-After"] == "3"
    when = parsedate_to_datetime(api.page({}).headers["Retry-After"])
    assert 20 < when.timestamp() - time.time() <= 31


def test_token_endpoint_faults(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("token", "status", nth=1, status=500)
    sandbox.faults.add("token", "non_json", nth=2)
    assert api.fetch_token().status_code == 500
    html = api.fetch_token()
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert api.fetch_token().status_code == 200


def test_file_id_predicates_pick_files(api, sandbox: Sandbox) -> None:
    rows = sandbox.tenant.rows()
    target = rows[0]["id"]
    sandbox.faults.add("file", "status", status=404, file_id=target)
    sandbox.faults.add("file", "status", status=500, when=lambda file_id: file_id == rows[-1]["id"])
    assert api.get(rows[0]["downloadUrl"]).status_code == 404
    assert api.get(rows[-1]["downloadUrl"]).status_code == 500
    other = next(row for row in rows if row["id"] not in (target, rows[-1]["id"]))
    assert api.get(other["downloadUrl"]).status_code == 200


@pytest.mark.parametrize("at", ["start", "headers"])
def test_reset_breaks_the_connection(api, sandbox: Sandbox, at: str) -> None:
    sandbox.faults.add("file", "reset", nth=1, at=at)
    url = first_row(sandbox)["downloadUrl"]
    # Reset before anything: ConnectionError; after the headers: ChunkedEncodingError.
    with pytest.raises(requests.exceptions.RequestException, match="reset|aborted|closed"):
        api.get(url)
    assert api.get(url).status_code == 200
    assert sandbox.stats.log("file")[0]["bytes_sent"] == 0


def test_truncate_sends_less_than_content_length(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("file", "truncate", nth=1, fraction=0.25)
    row = first_row(sandbox)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.get(row["downloadUrl"])
    assert sandbox.stats.log("file")[0]["bytes_sent"] == int(row["fileSize"] * 0.25)


def test_truncated_listing_is_invalid_json(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("list", "truncate", nth=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.page({})


@pytest.mark.parametrize("delta", [-100, 7])
def test_wrong_size_serves_a_consistent_but_different_length(api, sandbox, delta: int) -> None:
    sandbox.faults.add("file", "wrong_size", nth=1, delta=delta)
    row = first_row(sandbox)
    response = api.get(row["downloadUrl"])
    assert len(response.content) == row["fileSize"] + delta
    assert response.headers["Content-Length"] == str(row["fileSize"] + delta)


def test_stall_outlasts_a_client_timeout(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("list", "stall", nth=1, seconds=2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.get(f"{sandbox.base_url}/v1/images", timeout=0.3)
    assert api.page({}).status_code == 200


def test_latency_adds_to_every_matching_request(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("file", "latency", seconds=0.2)
    sandbox.faults.add("file", "status", nth=2, status=503)
    url = first_row(sandbox)["downloadUrl"]
    started = time.monotonic()
    codes = [api.get(url).status_code for _ in range(2)]
    assert codes == [200, 503]
    assert time.monotonic() - started >= 0.4


def test_non_json_and_bad_envelope(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("list", "non_json", nth=1)
    sandbox.faults.add("list", "bad_envelope", nth=2)
    html = api.page({})
    assert html.status_code == 200 and html.text.startswith("<!DOCTYPE html>")
    envelope = api.page({})
    assert envelope.status_code == 200 and "data" not in envelope.json()


def test_repeat_token_echoes_the_request_token(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("list", "repeat_token", nth=2)
    token = api.page({"ChunkLimit": 2}).json()["continuationToken"]
    again = api.page({"ChunkLimit": 2, "ContinuationToken": token}).json()
    assert again["continuationToken"] == token and again["data"]


def test_empty_page_keeps_the_position(api, sandbox: Sandbox) -> None:
    expected = api.rows({"ChunkLimit": 2})
    sandbox.faults.add("list", "empty_page", nth=2)
    pages = api.pages({"ChunkLimit": 2})
    assert pages[1]["data"] == [] and pages[1]["continuationToken"]
    assert [row for page in pages for row in page["data"]] == expected


def test_expire_tokens_rule_makes_the_request_401(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("list", "expire_tokens", nth=2)
    assert [api.page({}).status_code for _ in range(2)] == [200, 401]
    api.login()
    assert api.page({}).status_code == 200


def test_revoke_rule_disables_the_client(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("file", "revoke", nth=1)
    assert api.get(first_row(sandbox)["downloadUrl"]).status_code == 401
    api.login()
    assert api.page({}).status_code == 401


def test_blob_faults_apply_after_the_redirect(tenant, make_api) -> None:
    with Sandbox(tenant, redirect_files=True, blob_host="127.0.0.2") as sandbox:
        sandbox.faults.add("blob", "status", nth=1, status=503)
        response = make_api(sandbox).get(tenant.rows()[0]["downloadUrl"])
        assert response.status_code == 503
        assert sandbox.stats.count("file") == 1 and sandbox.stats.count("blob") == 1


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("pages", "status"), {"status": 500}, "endpoint"),
        (("list", "explode"), {}, "action"),
        (("token", "wrong_size"), {}, "applies to"),
        (("list", "status"), {}, "needs"),
        (("list", "status"), {"status": 500, "colour": "red"}, "takes"),
        (("list", "status"), {"status": 500, "nth": 0}, "empty"),
        (("list", "reset"), {"at": "middle"}, "start"),
    ],
)
def test_invalid_rules_are_refused(args: tuple, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults().add(*args, **options)


def test_clear_removes_every_rule(api, sandbox: Sandbox) -> None:
    sandbox.faults.add("list", "status", status=500)
    sandbox.faults.clear()
    assert api.page({}).status_code == 200


def test_control_surface_drives_faults_and_stats(api, sandbox: Sandbox) -> None:
    control = sandbox.control_url
    rule = {"endpoint": "list", "action": "status", "nth": 1, "status": 502}
    added = requests.post(f"{control}/faults", json=rule, timeout=TIMEOUT)
    assert added.status_code == 200 and added.json()["rules"][0]["params"]["status"] == 502
    assert api.page({}).status_code == 502
    stats = requests.get(f"{control}/stats", timeout=TIMEOUT).json()
    assert stats["counts"]["list"] == 1
    assert stats["log"][-1]["status"] == 502
    assert requests.post(f"{control}/reset", timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{control}/faults", timeout=TIMEOUT).json() == {"rules": []}
    assert sandbox.stats.count("list") == 0


def test_control_surface_rejects_bad_rules(sandbox: Sandbox) -> None:
    response = requests.post(
        f"{sandbox.control_url}/faults", json={"endpoint": "list"}, timeout=TIMEOUT
    )
    assert response.status_code == 400 and "action" in response.json()["message"]


def test_control_surface_expires_and_revokes(api, sandbox: Sandbox) -> None:
    api.login()
    requests.post(f"{sandbox.control_url}/tokens/expire", timeout=TIMEOUT)
    assert api.page({}).status_code == 401
    requests.post(f"{sandbox.control_url}/client/revoke", timeout=TIMEOUT)
    api.login()
    assert api.page({}).status_code == 401
    requests.post(f"{sandbox.control_url}/client/restore", timeout=TIMEOUT)
    assert api.page({}).status_code == 200


def test_stats_log_records_each_request(api, sandbox: Sandbox) -> None:
    row = first_row(sandbox)
    api.get(row["downloadUrl"])
    requests.get(row["downloadUrl"], timeout=TIMEOUT)
    authorized, anonymous = sandbox.stats.log("file")
    assert authorized["has_authorization"] and authorized["status"] == 200
    assert authorized["bytes_sent"] == row["fileSize"]
    assert authorized["path"] == f"/core/api/file/{row['id']}"
    assert not anonymous["has_authorization"] and anonymous["status"] == 401
    assert sandbox.stats.count("file") == 2 and sandbox.stats.count("token") == 1
    sandbox.stats.reset()
    assert sandbox.stats.count() == 0


def test_keep_alive_reuses_one_connection(api, sandbox: Sandbox) -> None:
    api.login()
    for _ in range(5):
        assert api.page({"ChunkLimit": 1}).status_code == 200
        api.get(first_row(sandbox)["downloadUrl"])
    clients = {entry["client"] for entry in sandbox.stats.log()}
    assert len(clients) == 1


def test_stop_closes_idle_keep_alive_connections(tenant) -> None:
    sandbox = Sandbox(tenant).start()
    client = socket.create_connection(("127.0.0.1", sandbox.port), timeout=5)
    client.sendall(b"GET /reporting/v1/images HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b"Content-Length: 0\r\n\r\n"):
        answer += client.recv(1000)
    assert answer.startswith(b"HTTP/1.1 401")
    started = time.monotonic()
    sandbox.stop()
    assert time.monotonic() - started < 3
    assert client.recv(100) == b""
    client.close()


def test_an_internal_error_answers_500_and_keeps_serving(api, sandbox: Sandbox) -> None:
    def broken(file_id: str) -> bool:
        raise RuntimeError(f"predicate failed for {file_id}")

    sandbox.faults.add("file", "status", status=404, when=broken)
    url = first_row(sandbox)["downloadUrl"]
    assert api.get(url).status_code == 500
    sandbox.faults.clear()
    assert api.get(url).status_code == 200
