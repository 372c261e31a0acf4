"""Checks on the rows of ``GET /v1/images``: what we accept, and what a row is.

A row is kept exactly as received. Validation only decides whether it can be used (its id will
become a key segment, its URLs will be fetched); a row that fails goes to the rejects with the
reason instead of being dropped or crashing the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ditio_images.layout import VARIANT_URL_FIELDS, is_file_id

_STRING_FIELDS = (
    "fileName",
    "fileNameOriginal",
    "fileType",
    "source",
    "originDescription",
    "collectionRef",
    "idRef",
    "companyId",
    "projectCompanyId",
    "projectId",
    "projectNumber",
    "projectName",
    "taskId",
    "taskName",
    "activityId",
    "activityNumber",
    "createdByUserId",
    "createdByUserName",
    "createdDateTime",
    "parentModifiedDateTime",
    *VARIANT_URL_FIELDS.values(),
)
_NUMBER_FIELDS = ("latitude", "longitude", "accuracy")
_INTEGER_FIELDS = ("fileSize", "userSecurityLevel")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_problem(row: Mapping[str, Any]) -> str | None:
    for name in _STRING_FIELDS:
        if row.get(name) is not None and not isinstance(row[name], str):
            return f"field {name!r} should be a string, got {type(row[name]).__name__}"
    for name in _NUMBER_FIELDS:
        if row.get(name) is not None and not _is_number(row[name]):
            return f"field {name!r} should be a number, got {type(row[name]).__name__}"
    for name in _INTEGER_FIELDS:
        value = row.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return f"field {name!r} should be an integer, got {type(value).__name__}"
    if row.get("fileSize") is not None and row["fileSize"] < 0:
        return "field 'fileSize' is negative"
    road = row.get("roadReference")
    if road is not None and not isinstance(road, dict):
        return f"field 'roadReference' should be an object, got {type(road).__name__}"
    return None


def reject_reason(row: object) -> str | None:
    """Return why ``row`` cannot be used, or ``None`` when it is fine."""
    if not isinstance(row, dict):
        return f"row is a {type(row).__name__}, not an object"
    if "id" not in row or row["id"] is None:
        return "row has no 'id'"
    if not is_file_id(row["id"]):
        return "field 'id' is not a plain identifier (letters, digits, '_' or '-')"
    return _type_problem(row)


def row_identity(row: Mapping[str, Any]) -> str:
    """The row's identity, ``(id, collectionRef, idRef)``, as a compact string."""
    return json.dumps([row.get("id"), row.get("collectionRef"), row.get("idRef")])


def file_entry(row: Mapping[str, Any], variants: Iterable[str]) -> dict[str, Any]:
    """What a download batch needs to know about one file: id, expected size, URLs."""
    urls = {v: row[VARIANT_URL_FIELDS[v]] for v in variants if row.get(VARIANT_URL_FIELDS[v])}
    return {"id": row["id"], "size": row.get("fileSize"), "urls": urls}
