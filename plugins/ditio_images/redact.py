"""Keep credentials out of URLs, messages and logs.

Every URL that reaches a log line or an exception goes through :func:`redact_url`; free text
that may embed URLs (messages of third-party exceptions) goes through :func:`scrub_text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

REDACTED = "REDACTED"
MASK = "***"
URL_LIMIT = 300
BODY_LIMIT = 300
SECRET_MIN_LENGTH = 8

SENSITIVE_KEYS = frozenset(
    {
        "access_token",
        "token",
        "refresh_token",
        "id_token",
        "sig",
        "signature",
        "se",
        "sp",
        "sv",
        "skoid",
        "code",
        "client_secret",
        "password",
        "secret",
        "key",
        "api_key",
        "apikey",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "awsaccesskeyid",
        "continuationtoken",
    }
)

_QUERY_VALUE = re.compile(r"(?P<sep>[?&;#])(?P<key>[^=&;#\s'\"<>]+)=(?P<value>[^&;#\s'\"<>]*)")
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"<>]+@")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def redact_url(url: str) -> str:
    """Return ``url`` fit for logs: no userinfo, sensitive query values hidden, bounded length.

    Never raises: input that cannot be parsed is scrubbed as plain text instead.
    """
    text = _escape_controls(url if isinstance(url, str) else str(url))
    try:
        parts = urlsplit(text)
    except ValueError:
        return _truncate(scrub_text(text), URL_LIMIT)

    netloc = parts.netloc.rpartition("@")[2]
    query = _redact_pairs(parts.query)
    fragment = _redact_pairs(parts.fragment)
    return _truncate(urlunsplit((parts.scheme, netloc, parts.path, query, fragment)), URL_LIMIT)


def scrub_text(text: str) -> str:
    """Hide userinfo, sensitive query values and bearer tokens inside free text."""
    text = _USERINFO.sub(r"\g<scheme>", text)
    text = _QUERY_VALUE.sub(_replace_match, text)
    return _BEARER.sub(r"\g<1>" + MASK, text)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each non-empty secret (and its URL-encoded forms)."""
    variants = set()
    for secret in secrets:
        if secret:
            variants.update({secret, quote(secret, safe=""), quote_plus(secret)})
    for variant in sorted(variants, key=len, reverse=True):
        text = text.replace(variant, MASK)
    return text


def url_secrets(url: str) -> list[str]:
    """The values of sensitive query keys in ``url``, raw and decoded, for :func:`redact_text`.

    A server may echo a signed query in its error body; these are the strings to hide there.
    Values shorter than 8 characters (``sp=r``, ``sv=2024``) are left out: they are not
    secret, and masking them would garble the rest of the text.
    """
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    values = []
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if sep and len(value) >= SECRET_MIN_LENGTH and _is_sensitive(key):
            values.extend({value, unquote_plus(value)})
    return values


def truncate_body(text: str | bytes, limit: int = BODY_LIMIT) -> str:
    """Return an error body as one bounded line for messages and logs."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return _truncate(" ".join(str(text).split()), limit)


def scrub_exception(err: BaseException) -> BaseException:
    """Scrub the string arguments of ``err`` and of its causes in place; return ``err``.

    Third-party exceptions (requests, urllib3) repeat the request URL in their message, and a
    chained cause is printed with every traceback, so signed query values must go from there
    too.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [err]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(_scrub_arg(arg, pending) for arg in current.args)
        pending.extend((current.__cause__, current.__context__))
    return err


def _scrub_arg(arg: object, pending: list[BaseException | None]) -> object:
    if isinstance(arg, str):
        return scrub_text(arg)
    if isinstance(arg, BaseException):
        pending.append(arg)
    return arg


def _redact_pairs(query: str) -> str:
    if not query:
        return query
    pairs = []
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if sep and _is_sensitive(key):
            value = REDACTED
        pairs.append(f"{key}{sep}{value}")
    return "&".join(pairs)


def _replace_match(match: re.Match[str]) -> str:
    if not _is_sensitive(match["key"]):
        return match[0]
    return f"{match['sep']}{match['key']}={REDACTED}"


def _is_sensitive(key: str) -> bool:
    return unquote_plus(key).strip().lower() in SENSITIVE_KEYS


def _escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda match: f"%{ord(match[0]):02X}", text)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)] + "..."
