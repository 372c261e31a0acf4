"""Airflow hook for the Ditio Reporting API: turns the connection into a client."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from ditio_images.auth import TokenProvider
from ditio_images.client import DitioClient
from ditio_images.exceptions import DitioConfigError, DitioError
from ditio_images.settings import DitioSettings


class DitioHook(BaseHook):
    """Interact with the Ditio Reporting API.

    The connection (type ``http``) holds the reporting base URL as host, the API client id as
    login and its secret as password; see :mod:`ditio_images.settings` for the extras.

    :param ditio_conn_id: the Airflow connection id.
    :param pool_size: HTTP connections kept open (match the downloads in flight).
    """

    conn_name_attr = "ditio_conn_id"
    default_conn_name = "ditio_default"
    conn_type = "http"
    hook_name = "Ditio Reporting API"

    def __init__(self, ditio_conn_id: str = default_conn_name, *, pool_size: int = 16) -> None:
        super().__init__()
        self.ditio_conn_id = ditio_conn_id
        self.pool_size = pool_size

    @cached_property
    def settings(self) -> DitioSettings:
        try:
            conn = self.get_connection(self.ditio_conn_id)
        except AirflowNotFoundException as err:
            raise DitioConfigError(
                f"The Airflow connection {self.ditio_conn_id!r} is not defined: add it (type "
                "http, host = reporting base URL, login = client id, password = secret)",
                field="conn_id",
            ) from err
        if conn.password:
            mask_secret(conn.password)
        if conn.host and "://" not in conn.host:
            self.log.info(
                "Connection %s has no scheme in its host; using %s://",
                self.ditio_conn_id,
                conn.schema if conn.schema in ("http", "https") else "https",
            )
        return DitioSettings.from_connection(
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extra=conn.extra_dejson,
            schema=conn.schema,
            port=conn.port,
        )

    def get_conn(self) -> DitioClient:
        """A client with its own token cache and connection pool."""
        settings = self.settings
        session = requests.Session()
        tokens = TokenProvider(
            token_url=settings.token_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            scope=settings.scope,
            session=session,
            policy=settings.policy,
            refresh_margin=settings.token_refresh_margin,
            on_token=mask_secret,
        )
        return DitioClient(
            base_url=settings.base_url,
            tokens=tokens,
            session=session,
            policy=settings.policy,
            trusted_hosts=settings.trusted_hosts,
            untrusted=settings.untrusted,
            max_file_bytes=settings.max_file_bytes,
            pool_size=self.pool_size,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Fetch a token: proves the URL, the credentials and the scope."""
        try:
            client = self.get_conn()
            client.tokens.token()
        except DitioError as err:
            return False, str(err)
        return True, f"Got a token for {self.settings.base_url}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {
                "host": "Reporting base URL",
                "login": "Client id",
                "password": "Client secret",
            },
            "placeholders": {
                "host": "https://core-api.ditio.app/reporting",
                "extra": '{"scope": "reportingapiv1", "trusted_hosts": []}',
            },
        }
