"""Query parsing, continuation tokens and page envelopes of `GET /reporting/v1/images`.

Parameter names are matched case-insensitively and unknown parameters are ignored, as
ASP.NET model binding does. Datetimes are ISO 8601; values without an offset are UTC.

A continuation token is standard base64 of a small JSON cursor: the source being drained,
the last sort timestamp served, a page counter and a hash of every other parameter.
A page draws from one source only; a page that reaches ChunkLimit keeps the token on that
source, so a source whose parents end exactly at a page boundary is followed by an empty
page whose token moves on to the next source.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ditio_sandbox.model import COMPANIES, PROJECTS, SOURCES, mix, parse_datetime
from ditio_sandbox.tenant import Query, Tenant

DEFAULT_CHUNK_LIMIT = 2500
MAX_CHUNK_LIMIT = 10_000
LAST_TOKEN_STYLES = ("absent", "null", "empty")
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
_SCALARS = (
    "projectid",
    "companyid",
    "fromdatetime",
    "todatetime",
    "modifiedsince",
    "modifiedbefore",
    "chunklimit",
    "continuationtoken",
    "requiregeocoordinate",
    "owncompanydataonly",
    "excludedatafromsubsidiaries",
)


class ApiError(Exception):
    """An error answer of the fake API: HTTP status, error code and message."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message}


@dataclass(frozen=True)
class Cursor:
    source: str
    after_ms: int | None
    page: int
    params_hash: str


@dataclass(frozen=True)
class ListRequest:
    query: Query
    chunk_limit: int
    cursor: Cursor | None
    params_hash: str
    items: tuple[tuple[str, str], ...]


def parse_list_request(raw_query: str) -> ListRequest:
    """Validate the query string of a listing call; raises ApiError(400) on bad input."""
    items = tuple(parse_qsl(raw_query, keep_blank_values=True))
    values = _group(items)
    query = _parse_query(values)
    chunk_limit = _chunk_limit(values.get("chunklimit"))
    params_hash = _hash_params(query, chunk_limit)
    token = values.get("continuationtoken")
    cursor = decode_cursor(token, query, params_hash) if token else None
    kept = tuple((key, value) for key, value in items if key.lower() != "continuationtoken")
    return ListRequest(query, chunk_limit, cursor, params_hash, kept)


def _group(items: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    values: dict[str, Any] = {"sources": []}
    for key, value in items:
        name = key.lower()
        if name == "sources" or re.fullmatch(r"sources\[\d*\]", name):
            values["sources"].append(value)
        elif name in _SCALARS:
            if name in values:
                raise ApiError(
                    400, "InvalidArgument", f"{key} was given more than once; send it once"
                )
            values[name] = value
    return values


def _parse_query(values: dict[str, Any]) -> Query:
    since = _datetime(values, "modifiedsince", "ModifiedSince")
    before = _datetime(values, "modifiedbefore", "ModifiedBefore")
    start = _datetime(values, "fromdatetime", "FromDateTime")
    end = _datetime(values, "todatetime", "ToDateTime")
    _check_window(since, before, start, end)
    incremental = since is not None
    return Query(
        sources=_sources(values["sources"]),
        incremental=incremental,
        start_ms=since if incremental else start,
        end_ms=before if incremental else end,
        project_id=_object_id(values.get("projectid"), "ProjectId"),
        company_id=_object_id(values.get("companyid"), "CompanyId"),
        require_geo=_boolean(values.get("requiregeocoordinate"), "RequireGeoCoordinate"),
        own_company_only=_boolean(values.get("owncompanydataonly"), "OwnCompanyDataOnly"),
        exclude_subsidiaries=_boolean(
            values.get("excludedatafromsubsidiaries"), "ExcludeDataFromSubsidiaries"
        ),
    )


def _check_window(
    since: int | None, before: int | None, start: int | None, end: int | None
) -> None:
    if before is not None and since is None:
        raise ApiError(400, "InvalidArgument", "ModifiedBefore requires ModifiedSince; add it")
    if before is not None and since is not None and before <= since:
        raise ApiError(400, "InvalidArgument", "ModifiedBefore must be later than ModifiedSince")
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "InvalidArgument", "ToDateTime must be later than FromDateTime")


def _datetime(values: dict[str, Any], key: str, name: str) -> int | None:
    raw = values.get(key)
    if raw is None:
        return None
    try:
        return parse_datetime(raw)
    except ValueError as err:
        message = f"{name}={raw!r} is not an ISO 8601 date-time (URL-encode a '+' offset)"
        raise ApiError(400, "InvalidArgument", message) from err


def _sources(raw_values: list[str]) -> tuple[str, ...]:
    wanted = set()
    for raw in raw_values:
        for part in raw.split(","):
            name = part.strip().lower()
            if name and name not in SOURCES:
                message = f"Sources value {part!r} is unknown; use feed, alert or checklist"
                raise ApiError(400, "InvalidArgument", message)
            if name:
                wanted.add(name)
    return tuple(source for source in SOURCES if source in wanted) or SOURCES


def _object_id(raw: str | None, name: str) -> str | None:
    if raw is None or raw == "":
        return None
    if not _OBJECT_ID.match(raw):
        raise ApiError(400, "InvalidArgument", f"{name}={raw!r} is not a 24-character hex id")
    return raw.lower()


def _boolean(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ApiError(400, "InvalidArgument", f"{name}={raw!r} is not a boolean; use true or false")


def _chunk_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_CHUNK_LIMIT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_CHUNK_LIMIT:
        message = f"ChunkLimit={raw!r} is out of range; use 1..{MAX_CHUNK_LIMIT}"
        raise ApiError(400, "InvalidArgument", message)
    return value


def _hash_params(query: Query, chunk_limit: int) -> str:
    text = json.dumps([list(query.__dict__.values()), chunk_limit], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(cursor: Cursor) -> str:
    payload = {"s": cursor.source, "a": cursor.after_ms, "p": cursor.page, "h": cursor.params_hash}
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_cursor(token: str, query: Query, params_hash: str) -> Cursor:
    """Parse a continuation token and check it belongs to these parameters."""
    try:
        payload = json.loads(base64.b64decode(token, validate=True))
        cursor = Cursor(payload["s"], payload["a"], int(payload["p"]), str(payload["h"]))
    except (binascii.Error, ValueError, KeyError, TypeError) as err:
        message = "ContinuationToken is malformed; send it back exactly as received"
        raise ApiError(400, "InvalidContinuationToken", message) from err
    valid_after = cursor.after_ms is None or isinstance(cursor.after_ms, int)
    if cursor.source not in query.sources or not valid_after:
        message = "ContinuationToken is malformed; send it back exactly as received"
        raise ApiError(400, "InvalidContinuationToken", message)
    if cursor.params_hash != params_hash:
        message = "ContinuationToken was issued for other parameters; keep them unchanged"
        raise ApiError(400, "ContinuationTokenMismatch", message)
    return cursor


def check_access(query: Query, forbidden_projects: set[str], forbidden_companies: set[str]) -> None:
    """403 for a ProjectId/CompanyId the client may not read (unknown ones included)."""
    projects = {project.project_id for project in PROJECTS} - forbidden_projects
    companies = {company.company_id for company in COMPANIES} - forbidden_companies
    if query.project_id is not None and query.project_id not in projects:
        message = f"No access to ProjectId={query.project_id}; ask for access or drop the filter"
        raise ApiError(403, "Forbidden", message)
    if query.company_id is not None and query.company_id not in companies:
        message = f"No access to CompanyId={query.company_id}; ask for access or drop the filter"
        raise ApiError(403, "Forbidden", message)


@dataclass
class PagePlan:
    """Page options set by faults: serve an empty page, or echo the request's token."""

    empty: bool = False
    repeat_token: bool = False


def build_page(
    tenant: Tenant,
    request: ListRequest,
    core_url: str,
    last_token: str,
    plan: PagePlan | None = None,
) -> dict[str, Any]:
    """The JSON envelope of one page."""
    plan = plan or PagePlan()
    query = request.query
    cursor = request.cursor or Cursor(query.sources[0], None, 0, request.params_hash)
    if plan.empty:
        rows, next_cursor = [], replace(cursor, page=cursor.page + 1)
    else:
        rows, next_cursor = _next(tenant, request, cursor, core_url)
    token = encode_cursor(next_cursor) if next_cursor else None
    if plan.repeat_token:
        token = encode_cursor(request.cursor or cursor)
    return _envelope(request, rows, token, _last_style(tenant, request, last_token))


def _next(
    tenant: Tenant, request: ListRequest, cursor: Cursor, core_url: str
) -> tuple[list[Any], Cursor | None]:
    query = request.query
    chunk = tenant.page(query, cursor.source, cursor.after_ms, request.chunk_limit, core_url)
    if chunk.full:
        return chunk.rows, replace(cursor, after_ms=chunk.last_ms, page=cursor.page + 1)
    position = query.sources.index(cursor.source)
    if position + 1 < len(query.sources):
        following = query.sources[position + 1]
        return chunk.rows, Cursor(following, None, cursor.page + 1, request.params_hash)
    return chunk.rows, None


def _last_style(tenant: Tenant, request: ListRequest, last_token: str) -> str:
    if last_token in LAST_TOKEN_STYLES:
        return last_token
    return LAST_TOKEN_STYLES[mix(tenant.seed, request.params_hash) % len(LAST_TOKEN_STYLES)]


def _envelope(
    request: ListRequest, rows: list[Any], token: str | None, last_style: str
) -> dict[str, Any]:
    envelope: dict[str, Any] = {"data": rows, "meta": {}}
    if token:
        envelope["continuationToken"] = token
    elif last_style != "absent":
        envelope["continuationToken"] = None if last_style == "null" else ""
    envelope["syncTypeName"] = "incremental" if request.query.incremental else "full"
    envelope["recordCount"] = len(rows)
    envelope["deletedRecordCount"] = 0
    links = {}
    if token:
        links["next"] = "/v1/images?" + urlencode([*request.items, ("ContinuationToken", token)])
    envelope["links"] = links
    return envelope
