"""S3 access for the sync: atomic streamed writes, line-by-line reads, cheap existence checks.

An object only ever appears at its final key complete: small bodies go up in one
``PutObject`` after the whole body was read and checked, larger ones as a multipart upload
that is completed only after the size check and aborted on any failure.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError

from ditio_images.exceptions import DitioConfigError, DitioIncompleteBody
from ditio_images.layout import Layout
from ditio_images.retry import RetryPolicy

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB
_LIST_PAGE = 1000


class S3Store:
    """One bucket, reached through a boto3 S3 client, every call under one retry policy.

    :param client: a boto3 S3 client (for example from ``S3Hook.get_conn()``).
    :param bucket: the bucket name.
    :param policy: the retry policy for every S3 call.
    :param part_size: multipart part size in bytes (at least 5 MiB); smaller bodies use one PUT.
    :param part_concurrency: parts of one object uploaded at once.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        policy: RetryPolicy,
        part_size: int = 8 * MIB,
        part_concurrency: int = 2,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes, got {part_size}")
        self.client = client
        self.bucket = bucket
        self.policy = policy
        self.part_size = part_size
        self.part_concurrency = max(1, part_concurrency)
        self._calls = 0
        self._calls_lock = threading.Lock()

    @property
    def calls(self) -> int:
        """How many S3 requests this store has made (retries included)."""
        return self._calls

    def call(self, operation: str, **kwargs: Any) -> Any:
        """Run one S3 API call under the retry policy."""

        def attempt() -> Any:
            with self._calls_lock:
                self._calls += 1
            return getattr(self.client, operation)(Bucket=self.bucket, **kwargs)

        try:
            return self.policy.run(attempt, describe=f"S3 {operation} {kwargs.get('Key', '')}")
        except (ClientError, ParamValidationError) as err:
            problem = _configuration_problem(err, self.bucket)
            if problem is None:
                raise
            raise DitioConfigError(problem, field="bucket") from err

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.call("put_object", Key=key, Body=data, ContentType=content_type)

    def put_json(self, key: str, value: Any) -> None:
        body = json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
        self.put_bytes(key, body, "application/json")

    def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or ``None`` when there is no such key."""
        try:
            response = self.call("get_object", Key=key)
        except ClientError as err:
            if _is_missing(err):
                return None
            raise
        return response["Body"].read()

    def get_json(self, key: str) -> Any | None:
        body = self.get_bytes(key)
        return None if body is None else json.loads(body)

    def iter_lines(self, key: str) -> Iterator[bytes]:
        """Stream an object line by line (gunzipped when the key ends in ``.gz``)."""
        body = self.call("get_object", Key=key)["Body"]
        stream: Any = gzip.GzipFile(fileobj=body) if key.endswith(".gz") else body
        try:
            for line in io.BufferedReader(stream, buffer_size=MIB):
                if line.strip():
                    yield line
        finally:
            body.close()

    def list_keys(self, prefix: str) -> Iterator[str]:
        return (key for key, _ in self.list_objects(prefix))

    def list_objects(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        """Every ``(key, last_modified)`` under ``prefix``."""
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self.call("list_objects_v2", Prefix=prefix, **extra)
            yield from ((item["Key"], item["LastModified"]) for item in page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def delete_keys(self, keys: Iterable[str]) -> int:
        batch: list[str] = []
        deleted = 0
        for key in keys:
            batch.append(key)
            if len(batch) == _LIST_PAGE:
                deleted += self._delete_batch(batch)
                batch = []
        return deleted + (self._delete_batch(batch) if batch else 0)

    def _delete_batch(self, keys: list[str]) -> int:
        objects = [{"Key": key} for key in keys]
        self.call("delete_objects", Delete={"Objects": objects, "Quiet": True})
        return len(keys)

    def delete_prefix(self, prefix: str) -> int:
        return self.delete_keys(list(self.list_keys(prefix)))

    def writer(self, key: str, content_type: str) -> ObjectWriter:
        return ObjectWriter(self, key, content_type)

    def upload_stream(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        content_type: str,
        expected_size: int | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> int:
        """Stream ``chunks`` to ``key``; no object appears unless all of it arrived.

        :param before_commit: called once the whole body is read and checked, just before the
            final PUT or multipart completion (a downloader frees its download slot there).
        :raises DitioIncompleteBody: when ``expected_size`` is given and not met.
        """
        with self.writer(key, content_type) as out:
            for chunk in chunks:
                out.write(chunk)
            if before_commit is not None and (expected_size is None or out.size == expected_size):
                before_commit()
            if expected_size is not None and out.size != expected_size:
                raise DitioIncompleteBody(
                    url=f"s3://{self.bucket}/{key}",
                    received=out.size,
                    expected=expected_size,
                    reason="the size differs from the expected size; nothing was stored",
                )
        return out.size

    def existing_objects(
        self, layout: Layout, file_ids: Iterable[str]
    ) -> dict[tuple[str, str], str]:
        """Map ``(file_id, variant)`` to the key of every image object already stored.

        Walks the ``images/`` prefix in key order from one requested id to the next, so a batch
        of ids that sit close together costs a few LIST calls instead of one HEAD per object.
        """
        wanted = set(file_ids)
        ids = sorted(wanted)
        root = layout.images_root
        found: dict[tuple[str, str], str] = {}
        index = 0
        start_after = f"{root}{ids[0]}" if ids else ""
        while index < len(ids):
            page = self.call(
                "list_objects_v2", Prefix=root, StartAfter=start_after, MaxKeys=_LIST_PAGE
            )
            keys = [item["Key"] for item in page.get("Contents", [])]
            for key in keys:
                parsed = layout.parse_image_key(key)
                if parsed and parsed[0] in wanted:
                    found[parsed] = key
            if not keys or not page.get("IsTruncated"):
                break
            last = keys[-1]
            # Every key of folder "<root><id>/" sorts below "<root><id>0" ('0' follows '/').
            while index < len(ids) and f"{root}{ids[index]}0" <= last:
                index += 1
            if index < len(ids):
                start_after = max(last, f"{root}{ids[index]}")
        return found


class ObjectWriter:
    """Write one object in pieces; it appears at its key only when :meth:`close` succeeds."""

    def __init__(self, store: S3Store, key: str, content_type: str) -> None:
        self.store = store
        self.key = key
        self.content_type = content_type
        self.size = 0
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._upload_id: str | None = None
        self._parts: list[Future[dict[str, Any]]] = []
        self._pool: ThreadPoolExecutor | None = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._buffer.append(data)
        self._buffered += len(data)
        self.size += len(data)
        while self._buffered >= self.store.part_size:
            self._flush_part(self._take(self.store.part_size))

    def close(self) -> None:
        """Complete the object: one PUT if it never reached a part, else finish the upload."""
        body = self._take(self._buffered)
        if self._upload_id is None:
            self.store.put_bytes(self.key, body, self.content_type)
            return
        if body:
            self._flush_part(body)
        parts = [future.result() for future in self._parts]
        self.store.call(
            "complete_multipart_upload",
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": parts},
        )
        self._shutdown()

    def abort(self) -> None:
        """Drop everything written so far; nothing appears at the key."""
        for future in self._parts:
            future.cancel()
        self._shutdown()
        if self._upload_id is not None:
            try:
                self.store.call("abort_multipart_upload", Key=self.key, UploadId=self._upload_id)
            except Exception:  # noqa: BLE001 - the original failure matters more
                log.warning("Could not abort the multipart upload of %s", self.key)

    def _take(self, size: int) -> bytes:
        joined = b"".join(self._buffer)
        head, rest = joined[:size], joined[size:]
        self._buffer = [rest] if rest else []
        self._buffered = len(rest)
        return head

    def _flush_part(self, body: bytes) -> None:
        if self._upload_id is None:
            started = self.store.call(
                "create_multipart_upload", Key=self.key, ContentType=self.content_type
            )
            self._upload_id = started["UploadId"]
            self._pool = ThreadPoolExecutor(self.store.part_concurrency, "ditio-part")
        number = len(self._parts) + 1
        self._wait_for_room()
        assert self._pool is not None
        self._parts.append(self._pool.submit(self._upload_part, number, body))

    def _wait_for_room(self) -> None:
        pending = [future for future in self._parts if not future.done()]
        while len(pending) >= self.store.part_concurrency:
            pending[0].result()
            pending = [future for future in pending if not future.done()]

    def _upload_part(self, number: int, body: bytes) -> dict[str, Any]:
        response = self.store.call(
            "upload_part", Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        return {"ETag": response["ETag"], "PartNumber": number}

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            try:
                self.close()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


_BUCKET_ERRORS = {
    "NoSuchBucket": "does not exist",
    "InvalidBucketName": "is not a valid bucket name",
    "AccessDenied": "denies this request to the aws_default credentials",
    "AllAccessDisabled": "has all access disabled",
    "InvalidAccessKeyId": "does not know the aws_default access key",
    "SignatureDoesNotMatch": "rejects the aws_default secret key",
}


def _configuration_problem(err: Exception, bucket: str) -> str | None:
    """A message for S3 errors that only a configuration change can fix, else None."""
    if isinstance(err, ParamValidationError):
        reason = "is not usable: " + str(err).splitlines()[-1]
    else:
        reason = _BUCKET_ERRORS.get(err.response.get("Error", {}).get("Code", ""))
    if reason is None:
        return None
    return (
        f"S3 bucket {bucket!r} {reason}. Check the Variable ditio_images_bucket (or the "
        "run's bucket param) and the aws_default connection; retrying will not help."
    )


def _is_missing(err: ClientError) -> bool:
    code = err.response.get("Error", {}).get("Code", "")
    return code in ("NoSuchKey", "404", "NotFound")


def json_line(value: Any) -> bytes:
    """One JSON Lines record, UTF-8, with a trailing newline."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def gzip_stream(lines: Iterable[bytes]) -> Iterator[bytes]:
    """Gzip an iterable of byte chunks lazily."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packer:
        for line in lines:
            packer.write(line)
            if buffer.tell() >= MIB:
                yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.BytesIO) -> bytes:
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data
