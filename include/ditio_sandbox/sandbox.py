"""`Sandbox`: the fake Ditio API running on loopback, for tests, demos and benchmarks.

with Sandbox(Tenant(seed=7)) as sandbox:
    token = requests.post(sandbox.token_url, data={...}).json()["access_token"]
    requests.get(f"{sandbox.base_url}/v1/images", headers=..., params=...)
    sandbox.faults.add("file", "status", nth=1, status=503)
    assert sandbox.stats.count("file") == ...
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from ditio_sandbox.app import App, Settings
from ditio_sandbox.faults import Faults
from ditio_sandbox.model import require_loopback
from ditio_sandbox.paging import LAST_TOKEN_STYLES
from ditio_sandbox.server import SandboxHTTPServer
from ditio_sandbox.stats import Stats
from ditio_sandbox.tenant import Tenant

logger = logging.getLogger(__name__)


class Sandbox:
    """A local Ditio API (identity, reporting and core hosts on one loopback server).

    :param tenant: the data to serve; a default `Tenant()` when None.
    :param host: loopback address to bind (127.0.0.0/8 or `localhost`).
    :param port: TCP port; 0 picks a free one.
    :param client_id: the only client the token endpoint accepts.
    :param client_secret: that client's secret.
    :param token_lifetime: `expires_in` of issued tokens, in seconds of `clock`.
    :param forbidden_projects: ProjectId values answered with 403.
    :param forbidden_companies: CompanyId values answered with 403.
    :param redirect_files: answer file requests with a 302 to a signed `/blob/` URL.
    :param blob_host: loopback address of a second listener (on a free port) that the
        redirects point at; None serves `/blob/` from this server.
    :param blob_ttl: lifetime of signed blob URLs, in seconds.
    :param file_scope: scope a token needs for file bytes (None: any valid token).
    :param last_token: how the last page ends: "absent", "null", "empty" or "random"
        (picked per parameter set, deterministically from the seed).
    :param clock: time source for token and signed-URL expiry.
    :param log_size: how many requests the stats log keeps.
    """

    def __init__(
        self,
        tenant: Tenant | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = "sandbox",
        client_secret: str = "sandbox-secret",
        token_lifetime: int = 1800,
        forbidden_projects: Iterable[str] = (),
        forbidden_companies: Iterable[str] = (),
        redirect_files: bool = False,
        blob_host: str | None = None,
        blob_ttl: int = 300,
        file_scope: str | None = None,
        last_token: str = "random",
        clock: Callable[[], float] = time.time,
        log_size: int = 10_000,
    ) -> None:
        if last_token not in (*LAST_TOKEN_STYLES, "random"):
            raise ValueError(f"last_token={last_token!r}; use absent, null, empty or random")
        self.tenant = tenant if tenant is not None else Tenant()
        self.host = _ipv4_loopback(host)
        self.blob_host = _ipv4_loopback(blob_host) if blob_host else None
        self._requested_port = port
        settings = Settings(
            client_id=client_id,
            client_secret=client_secret,
            token_lifetime=token_lifetime,
            forbidden_projects={value.lower() for value in forbidden_projects},
            forbidden_companies={value.lower() for value in forbidden_companies},
            redirect_files=redirect_files,
            blob_ttl=blob_ttl,
            file_scope=file_scope,
            last_token=last_token,
            log_size=log_size,
        )
        self._stop = threading.Event()
        self.app = App(self.tenant, settings, clock, self._stop)
        self._servers: list[SandboxHTTPServer] = []
        self._threads: list[threading.Thread] = []

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._servers:
            raise RuntimeError("this sandbox is already running; create a new one")
        main = SandboxHTTPServer((self.host, self._requested_port), self.app)
        self._servers.append(main)
        if self.blob_host:
            self._servers.append(SandboxHTTPServer((self.blob_host, 0), self.app))
        self.app.core_url = self.core_url
        self.app.blob_url = self._url(self._servers[-1]) if self.blob_host else self.url
        self.app.info = self.info()
        self.tenant.bind(self.core_url)
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        logger.info("Ditio sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled handlers and close open connections."""
        self._stop.set()
        for server in self._servers:
            server.shutdown()
            server.close_all()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._servers:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._servers[0].server_address[1]

    @staticmethod
    def _url(server: SandboxHTTPServer) -> str:
        host, port = server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Reporting API base, e.g. `http://127.0.0.1:PORT/reporting`."""
        return f"{self.url}/reporting"

    @property
    def identity_url(self) -> str:
        return self.url

    @property
    def token_url(self) -> str:
        return f"{self.url}/connect/token"

    @property
    def core_url(self) -> str:
        return f"{self.url}/core"

    @property
    def control_url(self) -> str:
        return f"{self.url}/_sandbox"

    @property
    def blob_url(self) -> str:
        return self.app.blob_url

    def info(self) -> dict[str, Any]:
        """URLs and credentials, as printed by `python -m ditio_sandbox`."""
        return {
            "base_url": self.base_url,
            "token_url": self.token_url,
            "core_url": self.core_url,
            "identity_url": self.identity_url,
            "control_url": self.control_url,
            "client_id": self.app.settings.client_id,
            "client_secret": self.app.settings.client_secret,
            "scope": "reportingapiv1",
        }

    # -- run-time controls ------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self.app.faults

    @property
    def stats(self) -> Stats:
        return self.app.stats

    def expire_tokens(self) -> None:
        """Every token issued so far is rejected (401) from now on."""
        self.app.tokens.expire_all()

    def revoke_client(self) -> None:
        """Disable the client: all tokens, also ones issued later, get 401."""
        self.app.tokens.revoke()

    def restore_client(self) -> None:
        self.app.tokens.restore()

    def reset(self) -> None:
        """Clear faults and stats and re-enable a revoked client."""
        self.app.reset()


def _ipv4_loopback(host: str) -> str:
    require_loopback(host)
    address = "127.0.0.1" if host == "localhost" else host
    if ipaddress.ip_address(address).version != 4:
        raise ValueError(f"host {host!r}: the sandbox binds IPv4 only; use one in 127.0.0.0/8")
    return address
