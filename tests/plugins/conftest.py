"""Fixtures that start small fake HTTP servers on loopback for client tests."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from fake_http import FakeServer, token_route


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeServer]]:
    """Start fake servers: ``serve()`` on 127.0.0.1, ``serve("127.0.0.2")`` elsewhere."""
    servers: list[FakeServer] = []

    def start(host: str = "127.0.0.1") -> FakeServer:
        server = FakeServer(host).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def api(serve: Callable[..., FakeServer]) -> FakeServer:
    """The trusted API host: token endpoint, reporting API and core files on one server."""
    server = serve()
    server.route("POST", "/connect/token", token_route())
    return server


@pytest.fixture
def foreign(serve: Callable[..., FakeServer]) -> FakeServer:
    """A recorder on another loopback address, standing for a host outside our trust."""
    return serve("127.0.0.2")


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
