"""Where everything lives in the bucket.

Every key is built here from a validated prefix, a validated file id, a fixed variant name and
the interval start. Nothing the API supplies as a name ever becomes part of a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ditio_images.exceptions import DitioConfigError

VARIANT_URL_FIELDS: dict[str, str] = {
    "original": "downloadUrl",
    "large": "largeUrl",
    "medium": "mediumUrl",
    "thumbnail": "thumbnailUrl",
}
VARIANTS = tuple(VARIANT_URL_FIELDS)

FILE_ID_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,127}")
_PREFIX_SEGMENT = re.compile(r"[0-9A-Za-z_.=-]+")

EXTENSIONS: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/png": ".png",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/tiff": ".tif",
    "image/bmp": ".bmp",
    "image/avif": ".avif",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "application/pdf": ".pdf",
}
DEFAULT_EXTENSION = ".bin"


def is_file_id(value: object) -> bool:
    """Tell whether ``value`` may become a key segment (a plain identifier)."""
    return isinstance(value, str) and FILE_ID_PATTERN.fullmatch(value) is not None


def extension_for(content_type: str) -> str:
    """Map a content type (parameters allowed) to a fixed file extension."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return EXTENSIONS.get(media_type, DEFAULT_EXTENSION)


def normalize_prefix(prefix: str | None) -> str:
    """Validate a key prefix and return it as ``""`` or ``"seg/seg/"``.

    :param prefix: user-supplied prefix such as ``"ditio/prod"``; ``None`` means no prefix.
    :raises DitioConfigError: when a segment is empty, ``.``/``..`` or has other characters.
    """
    text = (prefix or "").strip().strip("/")
    if not text:
        return ""
    segments = text.split("/")
    for segment in segments:
        if segment in (".", "..") or not _PREFIX_SEGMENT.fullmatch(segment):
            raise DitioConfigError(
                f"Invalid S3 prefix {prefix!r}: segment {segment!r} is not allowed. Use "
                "letters, digits and . _ = - separated by single slashes, without '..'."
            )
    return "/".join(segments) + "/"


def check_variants(variants: object) -> tuple[str, ...]:
    """Validate the requested variants and return them in canonical order."""
    if isinstance(variants, str):
        variants = [variants]
    if not isinstance(variants, list | tuple) or not variants:
        raise DitioConfigError(f"variants must be a non-empty list of {list(VARIANTS)}")
    unknown = sorted(set(map(str, variants)) - set(VARIANTS))
    if unknown:
        raise DitioConfigError(f"Unknown variants {unknown}; choose from {list(VARIANTS)}")
    return tuple(name for name in VARIANTS if name in variants)


@dataclass(frozen=True)
class Layout:
    """The key layout of one bucket prefix.

    :param bucket: the S3 bucket name.
    :param prefix: a prefix already passed through :func:`normalize_prefix`.
    """

    bucket: str
    prefix: str = ""

    @classmethod
    def create(cls, bucket: str | None, prefix: str | None) -> Layout:
        if not bucket or not isinstance(bucket, str):
            raise DitioConfigError(
                "No S3 bucket configured: set the Airflow Variable 'ditio_images_bucket' "
                "or pass the 'bucket' param when triggering the DAG."
            )
        return cls(bucket=bucket.strip(), prefix=normalize_prefix(prefix))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @property
    def images_root(self) -> str:
        return f"{self.prefix}images/"

    def image_folder(self, file_id: str) -> str:
        if not is_file_id(file_id):
            raise ValueError(f"not a valid file id: {file_id!r}")
        return f"{self.images_root}{file_id}/"

    def image_key(self, file_id: str, variant: str, content_type: str) -> str:
        if variant not in VARIANT_URL_FIELDS:
            raise ValueError(f"not a variant: {variant!r}")
        return f"{self.image_folder(file_id)}{variant}{extension_for(content_type)}"

    def parse_image_key(self, key: str) -> tuple[str, str] | None:
        """Return ``(file_id, variant)`` for a key written by :meth:`image_key`."""
        if not key.startswith(self.images_root):
            return None
        parts = key[len(self.images_root) :].split("/")
        if len(parts) != 2 or not is_file_id(parts[0]):
            return None
        variant = parts[1].split(".", 1)[0]
        return (parts[0], variant) if variant in VARIANT_URL_FIELDS else None

    def manifest_folder(self, start: datetime) -> str:
        return f"{self.prefix}manifests/{partition(start)}/"

    def manifest_key(self, start: datetime, *, gzip: bool = False) -> str:
        return f"{self.manifest_folder(start)}images.jsonl{'.gz' if gzip else ''}"

    def rejects_folder(self, start: datetime) -> str:
        return f"{self.prefix}rejects/{partition(start)}/"

    def rejects_key(self, start: datetime) -> str:
        return f"{self.rejects_folder(start)}rejects.jsonl"

    def summary_key(self, start: datetime) -> str:
        return f"{self.prefix}runs/{partition(start)}/summary.json"

    def staging_folder(self, start: datetime) -> str:
        return f"{self.prefix}_staging/{partition(start)}/"


def partition(start: datetime) -> str:
    """The Hive-style partition of an interval, from its start in UTC."""
    if start.tzinfo is None:
        raise ValueError("interval start must be timezone-aware")
    moment = start.astimezone(UTC)
    return f"dt={moment:%Y-%m-%d}/hour={moment:%H}"
