"""Turn the fields of the ``ditio_default`` connection into validated settings.

host      the reporting base URL, with scheme and path (``https://core-api.ditio.app/reporting``)
login     the API client id
password  the API client secret
extra     ``token_url``, ``scope``, ``trusted_hosts``, ``untrusted_downloads``,
          ``max_file_bytes``, ``token_refresh_margin`` and the retry keys of
          :meth:`~ditio_images.retry.RetryPolicy.from_extras`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ditio_images.exceptions import DitioConfigError
from ditio_images.retry import RetryPolicy

IDENTITY_BY_DOMAIN = {
    "ditio.app": "https://identity.ditio.app/connect/token",
    "ditio.dev": "https://identity.ditio.dev/connect/token",
}
DEFAULT_SCOPE = "reportingapiv1"
DEFAULT_MAX_FILE_BYTES = 2 * 1024**3
UNTRUSTED_CHOICES = ("refuse", "anonymous")


def is_loopback(hostname: str | None) -> bool:
    if not hostname:
        return False
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def _ditio_domain(hostname: str) -> str | None:
    host = hostname.lower().rstrip(".")
    return next((d for d in IDENTITY_BY_DOMAIN if host == d or host.endswith("." + d)), None)


def base_url_from(host: str | None, schema: str | None = None, port: int | None = None) -> str:
    """Build the reporting base URL from the connection's host (and schema/port fields)."""
    text = (host or "").strip()
    if not text:
        raise DitioConfigError(
            "The Ditio connection has no host: set it to the reporting base URL, for example "
            "https://core-api.ditio.app/reporting",
            field="host",
        )
    if "://" not in text:
        scheme = schema if schema in ("http", "https") else "https"
        text = f"{scheme}://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DitioConfigError(f"The Ditio host {host!r} is not an http(s) URL", field="host")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise DitioConfigError(
            f"The Ditio host {host!r} uses plain http; use https (http is only for a local "
            "sandbox on a loopback address)",
            field="host",
        )
    netloc = parts.netloc if parts.port or not port else f"{parts.netloc}:{port}"
    path = parts.path.rstrip("/")
    if not path and _ditio_domain(parts.hostname):
        path = "/reporting"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _hosts(value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise DitioConfigError(
            "Extra 'trusted_hosts' must be a list of host names or a comma-separated string",
            field="trusted_hosts",
        )
    return tuple(item.strip().lower() for item in items if item.strip())


def positive_int(value: Any, name: str, *, what: str = "") -> int:
    """``value`` as a whole number above 0 (digit strings accepted, as templates render them).

    :param name: the setting's name, for the error and its ``field``.
    :param what: how to call it in the message, e.g. ``"Extra 'max_file_bytes'"``.
    """
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        label = what or name
        raise DitioConfigError(
            f"{label} must be a positive whole number, got {value!r}", field=name
        )
    return value


def _positive_int(extra: Mapping[str, Any], name: str, default: int) -> int:
    return positive_int(extra.get(name, default), name, what=f"Extra {name!r}")


def _non_negative_float(extra: Mapping[str, Any], name: str, default: float) -> float:
    try:
        value = float(extra.get(name, default))
    except (TypeError, ValueError):
        value = -1.0
    if value < 0:
        raise DitioConfigError(f"Extra {name!r} must be a number of seconds >= 0", field=name)
    return value


@dataclass(frozen=True)
class DitioSettings:
    """Everything needed to build a client, validated."""

    base_url: str
    token_url: str
    client_id: str
    client_secret: str
    scope: str
    trusted_hosts: tuple[str, ...]
    untrusted: str
    max_file_bytes: int
    token_refresh_margin: float
    policy: RetryPolicy

    @classmethod
    def from_connection(
        cls,
        *,
        host: str | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any] | None,
        schema: str | None = None,
        port: int | None = None,
    ) -> DitioSettings:
        extra = dict(extra or {})
        base_url = base_url_from(host, schema, port)
        if not login or not password:
            raise DitioConfigError(
                "The Ditio connection needs the API client id as login and its secret as password",
                field="login" if not login else "password",
            )
        untrusted = str(extra.get("untrusted_downloads", "refuse"))
        if untrusted not in UNTRUSTED_CHOICES:
            raise DitioConfigError(
                f"Extra 'untrusted_downloads' must be one of {list(UNTRUSTED_CHOICES)}",
                field="untrusted_downloads",
            )
        return cls(
            base_url=base_url,
            token_url=token_url_for(base_url, extra.get("token_url")),
            client_id=login,
            client_secret=password,
            scope=str(extra.get("scope") or DEFAULT_SCOPE),
            trusted_hosts=_hosts(extra.get("trusted_hosts")),
            untrusted=untrusted,
            max_file_bytes=_positive_int(extra, "max_file_bytes", DEFAULT_MAX_FILE_BYTES),
            token_refresh_margin=_non_negative_float(extra, "token_refresh_margin", 60.0),
            policy=RetryPolicy.from_extras(extra),
        )


def token_url_for(base_url: str, configured: Any) -> str:
    """The identity server's token URL: the configured one, or the environment's default."""
    if configured:
        parts = urlsplit(str(configured))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DitioConfigError(
                f"Extra 'token_url' {configured!r} is not a URL", field="token_url"
            )
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise DitioConfigError("Extra 'token_url' must use https", field="token_url")
        return str(configured)
    hostname = urlsplit(base_url).hostname or ""
    domain = _ditio_domain(hostname)
    if domain is None:
        raise DitioConfigError(
            f"Cannot tell which identity server issues tokens for {hostname}: set the "
            "connection extra 'token_url' (for example https://identity.ditio.app/connect/token)",
            field="token_url",
        )
    return IDENTITY_BY_DOMAIN[domain]
