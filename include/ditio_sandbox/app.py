"""Request handling of the sandbox, independent of sockets: routes, auth and faults.

Routes (one server plays the identity, reporting and core hosts by path):

- `POST /connect/token` client credentials (form body or HTTP Basic);
- `GET /reporting/v1/images` listing (see `paging`);
- `GET|HEAD /core/api/file/{id}[?MaxDimension=N]` bytes; with `redirect_files` a 302 to
  `/blob/{id}?...&sig=...`, which wants no Authorization header (400 if one is sent) and a
  valid, unexpired signature (403 otherwise), like signed blob storage;
- `/_sandbox/...` control surface (faults, stats, reset; no auth, loopback only).

Originals support a single `Range: bytes=a-b`. MaxDimension accepts any integer in
1..4096 (the API documents 128, 640 and 1980).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from ditio_sandbox.faults import Decision, Faults
from ditio_sandbox.files import FileSpec
from ditio_sandbox.paging import ApiError, PagePlan, build_page, check_access, parse_list_request
from ditio_sandbox.stats import Stats
from ditio_sandbox.tenant import Tenant
from ditio_sandbox.tokens import KNOWN_SCOPES, REPORTING_SCOPE, TokenStore

CACHE_CONTROL = "public, max-age=1209600"
JSON_TYPE = "application/json; charset=utf-8"
FILE_PREFIX = "/core/api/file/"
BLOB_PREFIX = "/blob/"
CONTROL_PREFIX = "/_sandbox"
_UNAUTHORIZED = {
    "unknown": "The token is not valid",
    "expired": "The token expired",
    "revoked": "The client is disabled",
}


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: Message
    body: bytes = b""


@dataclass
class Response:
    """An answer; `reset` and `truncate` tell the writer to break the connection."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: Iterator[bytes] | None = None
    length: int | None = None
    reset: str | None = None
    truncate: float | None = None
    fault: str | None = None

    @property
    def size(self) -> int:
        return (
            self.length if self.stream is not None and self.length is not None else len(self.body)
        )


@dataclass
class Settings:
    client_id: str = "sandbox"
    client_secret: str = "sandbox-secret"
    token_lifetime: int = 1800
    forbidden_projects: set[str] = field(default_factory=set)
    forbidden_companies: set[str] = field(default_factory=set)
    redirect_files: bool = False
    blob_ttl: int = 300
    file_scope: str | None = None
    last_token: str = "random"
    log_size: int = 10_000


def json_response(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Response(status, [("Content-Type", JSON_TYPE), *(headers or [])], body)


def error_response(status: int, error: str, message: str) -> Response:
    return json_response(status, {"error": error, "message": message})


def classify(path: str) -> tuple[str, str | None]:
    """(endpoint name, file id or None) for a request path."""
    lowered = path.lower()
    if lowered == "/connect/token":
        return "token", None
    if lowered == "/reporting/v1/images":
        return "list", None
    if lowered.startswith(FILE_PREFIX):
        return "file", unquote(path[len(FILE_PREFIX) :])
    if path.startswith(BLOB_PREFIX):
        return "blob", unquote(path[len(BLOB_PREFIX) :])
    if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
        return "control", None
    return "other", None


class App:
    """State and routes of one sandbox: tenant, tokens, faults and stats."""

    def __init__(
        self,
        tenant: Tenant,
        settings: Settings,
        clock: Callable[[], float],
        stop: threading.Event,
    ) -> None:
        self.tenant = tenant
        self.settings = settings
        self.clock = clock
        self.tokens = TokenStore(settings.token_lifetime, clock)
        self.faults = Faults()
        self.stats = Stats(settings.log_size)
        self.core_url = ""
        self.blob_url = ""
        self.info: dict[str, Any] = {}
        self._stop = stop
        self._signing_key = secrets.token_bytes(32)
        self._routes: dict[str, Callable[[Request, Decision, str | None], Response]] = {
            "token": self.token,
            "list": self.list_images,
            "file": self.file,
            "blob": self.blob,
        }

    def handle(self, request: Request, endpoint: str, file_id: str | None) -> Response:
        if endpoint == "control":
            return self.control(request)
        if endpoint not in self._routes:
            return error_response(404, "NotFound", f"No route for {request.path}")
        decision = self.faults.decide(endpoint, file_id)
        delay = decision.delay + (
            float(decision.param("seconds")) if decision.action == "stall" else 0
        )
        if delay:
            self._stop.wait(delay)
        response = self._early_fault(decision)
        if response is None:
            response = self._routes[endpoint](request, decision, file_id)
            response = self._late_fault(response, decision)
        response.fault = decision.action
        return response

    # -- faults -----------------------------------------------------------------------------

    def _early_fault(self, decision: Decision) -> Response | None:
        action = decision.action
        if action == "status":
            return _status_fault(decision.rule.params) if decision.rule else None
        if action == "reset" and decision.param("at") == "start":
            return Response(0, reset="start")
        if action == "expire_tokens":
            self.tokens.expire_all()
        if action == "revoke":
            self.tokens.revoke()
        return None

    @staticmethod
    def _late_fault(response: Response, decision: Decision) -> Response:
        action = decision.action
        if action == "reset":
            response.reset = "headers"
        elif action == "truncate":
            response.truncate = float(decision.param("fraction"))
        elif response.status != 200:
            return response
        elif action == "non_json":
            body = b"<!DOCTYPE html><html><body><h1>Service Unavailable</h1></body></html>"
            return Response(200, [("Content-Type", "text/html; charset=utf-8")], body)
        elif action == "bad_envelope":
            return json_response(200, {"meta": {}, "message": "Upstream returned no data"})
        elif action == "wrong_size":
            _change_size(response, int(decision.param("delta")))
        return response

    # -- identity ---------------------------------------------------------------------------

    def token(self, request: Request, decision: Decision, _: str | None) -> Response:
        if request.method != "POST":
            return _method_not_allowed("POST")
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return _oauth_error("invalid_request", "Send the token request form-encoded")
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, client_secret = _client_credentials(request, form)
        if (client_id, client_secret) != (self.settings.client_id, self.settings.client_secret):
            return _oauth_error("invalid_client")
        grant_type = form.get("grant_type", "")
        if not grant_type:
            return _oauth_error("invalid_request", "grant_type is missing")
        if grant_type != "client_credentials":
            return _oauth_error("unsupported_grant_type")
        scopes = frozenset(form.get("scope", "").split())
        if REPORTING_SCOPE not in scopes or not scopes <= KNOWN_SCOPES:
            return _oauth_error("invalid_scope")
        payload = {
            "access_token": self.tokens.issue(scopes),
            "expires_in": self.tokens.lifetime,
            "token_type": "Bearer",
            "scope": " ".join(sorted(scopes)),
        }
        return json_response(200, payload, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    def authorize(self, request: Request, scope: str | None = None) -> Response | None:
        """None when the bearer token is usable, else the 401/403 answer."""
        header = request.headers.get("Authorization", "")
        if not header:
            return Response(401, [("WWW-Authenticate", "Bearer")])
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("The authorization header is not a bearer token")
        state, grant = self.tokens.check(token.strip())
        if state != "ok" or grant is None:
            return _unauthorized(_UNAUTHORIZED[state])
        if scope and scope not in grant.scopes:
            return error_response(403, "insufficient_scope", f"The token lacks scope {scope}")
        return None

    # -- reporting --------------------------------------------------------------------------

    def list_images(self, request: Request, decision: Decision, _: str | None) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _method_not_allowed("GET, HEAD")
        denied = self.authorize(request)
        if denied:
            return denied
        try:
            parsed = parse_list_request(request.query)
            check_access(
                parsed.query, self.settings.forbidden_projects, self.settings.forbidden_companies
            )
        except ApiError as err:
            return json_response(err.status, err.body())
        plan = PagePlan(decision.action == "empty_page", decision.action == "repeat_token")
        envelope = build_page(self.tenant, parsed, self.core_url, self.settings.last_token, plan)
        return json_response(200, envelope)

    # -- files ------------------------------------------------------------------------------

    def file(self, request: Request, decision: Decision, file_id: str | None) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _method_not_allowed("GET, HEAD")
        denied = self.authorize(request, self.settings.file_scope)
        if denied:
            return denied
        spec = self.tenant.file_spec(file_id or "")
        if spec is None:
            return error_response(404, "NotFound", f"File {file_id!r} does not exist")
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        try:
            dimension = _dimension(params)
        except ApiError as err:
            return json_response(err.status, err.body())
        if self.settings.redirect_files:
            return Response(302, [("Location", self._blob_location(spec.file_id, dimension))])
        return self._serve(request, spec, dimension)

    def _serve(self, request: Request, spec: FileSpec, dimension: int | None) -> Response:
        headers = [("Cache-Control", CACHE_CONTROL)]
        if dimension is not None:
            data, content_type = self.tenant.catalog.resized(spec, dimension)
            return Response(200, [("Content-Type", content_type), *headers], data)
        body = self.tenant.catalog.body(spec)
        headers += [("Content-Type", body.content_type), ("Accept-Ranges", "bytes")]
        span = _byte_range(request.headers.get("Range"), body.size)
        if span is None:
            return Response(200, headers, stream=body.iter_range(), length=body.size)
        if span == (0, 0):
            unsatisfiable = [("Content-Range", f"bytes */{body.size}")]
            return Response(416, unsatisfiable)
        first, stop = span
        headers.append(("Content-Range", f"bytes {first}-{stop - 1}/{body.size}"))
        return Response(206, headers, stream=body.iter_range(first, stop), length=stop - first)

    def _signature(self, file_id: str, dimension: str, expires: str) -> str:
        message = f"{file_id}|{dimension}|{expires}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def _blob_location(self, file_id: str, dimension: int | None) -> str:
        size = "" if dimension is None else str(dimension)
        expires = str(int(self.clock()) + self.settings.blob_ttl)
        query = {"dim": size, "exp": expires, "sig": self._signature(file_id, size, expires)}
        return f"{self.blob_url}{BLOB_PREFIX}{file_id}?{urlencode(query)}"

    def blob(self, request: Request, decision: Decision, file_id: str | None) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _method_not_allowed("GET, HEAD")
        if "Authorization" in request.headers:
            return _blob_error(400, "InvalidAuthenticationInfo", "Do not send Authorization")
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        size, expires = params.get("dim", ""), params.get("exp", "")
        expected = self._signature(file_id or "", size, expires)
        if not hmac.compare_digest(expected, params.get("sig", "")):
            return _blob_error(403, "AuthenticationFailed", "Signature mismatch")
        if not expires.isdigit() or int(expires) < self.clock():
            return _blob_error(403, "AuthenticationFailed", "Signed URL expired")
        spec = self.tenant.file_spec(file_id or "")
        if spec is None:
            return _blob_error(404, "BlobNotFound", "The blob does not exist")
        return self._serve(request, spec, int(size) if size else None)

    # -- control surface --------------------------------------------------------------------

    def control(self, request: Request) -> Response:
        action = request.path[len(CONTROL_PREFIX) :].strip("/")
        handlers: dict[tuple[str, str], Callable[[Request], Any]] = {
            ("GET", "info"): lambda _: self.info,
            ("GET", "stats"): lambda _: self.stats_snapshot(),
            ("POST", "stats/reset"): lambda _: self.stats.reset(),
            ("GET", "faults"): lambda _: {"rules": self.faults.rules()},
            ("POST", "faults"): self._add_faults,
            ("DELETE", "faults"): lambda _: self.faults.clear(),
            ("POST", "faults/clear"): lambda _: self.faults.clear(),
            ("POST", "reset"): lambda _: self.reset(),
            ("POST", "tokens/expire"): lambda _: self.tokens.expire_all(),
            ("POST", "client/revoke"): lambda _: self.tokens.revoke(),
            ("POST", "client/restore"): lambda _: self.tokens.restore(),
        }
        handler = handlers.get((request.method, action))
        if handler is None:
            return error_response(404, "NotFound", f"No control action {request.method} {action!r}")
        try:
            result = handler(request)
        except ValueError as err:
            return error_response(400, "InvalidFault", str(err))
        return json_response(200, result if result is not None else {"ok": True})

    def _add_faults(self, request: Request) -> dict[str, Any]:
        try:
            spec = json.loads(request.body or b"null")
        except ValueError as err:
            raise ValueError(f"the fault body is not JSON: {err}") from err
        specs = spec if isinstance(spec, list) else spec.get("rules", [spec]) if spec else []
        for item in specs:
            self.faults.add_json(item)
        return {"rules": self.faults.rules()}

    def stats_snapshot(self) -> dict[str, Any]:
        counts = self.stats.counts()
        peaks = {name: self.stats.max_in_flight(name) for name in counts}
        return {"counts": counts, "max_in_flight": peaks, "log": self.stats.log()}

    def reset(self) -> None:
        """Clear faults and stats and re-enable a revoked client."""
        self.faults.clear()
        self.stats.reset()
        self.tokens.restore()


def _status_fault(params: dict[str, Any]) -> Response:
    status = int(params["status"])
    headers: list[tuple[str, str]] = []
    retry_after = params.get("retry_after")
    if retry_after is not None:
        if params.get("retry_after_date"):
            retry_after = formatdate(time.time() + float(retry_after), usegmt=True)
        headers.append(("Retry-After", str(retry_after)))
    if params.get("body") is not None:
        body = str(params["body"]).encode()
        return Response(status, [("Content-Type", "text/plain; charset=utf-8"), *headers], body)
    if status in (502, 504):
        html = f"<html><body><h1>{status} Gateway error</h1></body></html>".encode()
        return Response(status, [("Content-Type", "text/html"), *headers], html)
    response = error_response(status, f"Http{status}", f"Injected status {status}")
    response.headers += headers
    return response


def _change_size(response: Response, delta: int) -> None:
    if response.stream is None:
        response.body = response.body[:delta] if delta < 0 else response.body + b"\0" * delta
        return
    length = (response.length or 0) + delta
    stream = response.stream
    if delta < 0:
        response.stream = _limited(stream, length)
    else:
        response.stream = itertools.chain(stream, [b"\0" * delta])
    response.length = length


def _limited(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    remaining = limit
    for chunk in chunks:
        if remaining <= 0:
            return
        yield chunk[:remaining]
        remaining -= len(chunk[:remaining])


def _dimension(params: dict[str, str]) -> int | None:
    raw = next((value for key, value in params.items() if key.lower() == "maxdimension"), None)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 4096:
        raise ApiError(400, "InvalidArgument", f"MaxDimension={raw!r}; use 128, 640 or 1980")
    return int(raw)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, stop) for one `bytes=` range; None to serve it all; (0, 0) if unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_text, _, last_text = header[6:].strip().partition("-")
    try:
        if first_text == "":
            first, stop = max(0, size - int(last_text)), size
        else:
            first = int(first_text)
            stop = min(size, int(last_text) + 1) if last_text else size
    except ValueError:
        return None
    if first >= size or first >= stop:
        return 0, 0
    return first, stop


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return "", ""
        client_id, _, client_secret = decoded.partition(":")
        return unquote(client_id), unquote(client_secret)
    return form.get("client_id", ""), form.get("client_secret", "")


def _oauth_error(error: str, description: str | None = None) -> Response:
    payload = {"error": error}
    if description:
        payload["error_description"] = description
    return json_response(400, payload, [("Cache-Control", "no-store")])


def _unauthorized(description: str) -> Response:
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return Response(401, [("WWW-Authenticate", challenge)])


def _method_not_allowed(allowed: str) -> Response:
    response = error_response(405, "MethodNotAllowed", f"Use {allowed}")
    response.headers.append(("Allow", allowed))
    return response


def _blob_error(status: int, code: str, message: str) -> Response:
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()
    return Response(status, [("Content-Type", "application/xml")], body)
