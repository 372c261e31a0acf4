"""Local fake HTTP servers for the client and token tests.

Each server binds a loopback address on port 0, records every request it sees and answers
from a route table that a test fills in. A route returns a :class:`Reply`, or writes to the
socket itself for broken responses.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class Reply:
    """A well-formed answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Reply:
        body = json.dumps(payload).encode()
        return cls(status, body, {"Content-Type": "application/json", **headers})


Route = Callable[[Seen, BaseHTTPRequestHandler], "Reply | None"]


class FakeServer:
    """A threaded HTTP server on one loopback address with a per-test route table."""

    def __init__(self, host: str) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def netloc(self) -> str:
        return self.url.removeprefix("http://")

    def route(self, method: str, path: str, answer: Route | Reply) -> None:
        """Answer ``method path`` with a fixed reply or a callable."""
        self.routes[(method, path)] = answer if callable(answer) else (lambda _s, _h: answer)

    def replies(self, method: str, path: str, *answers: Reply) -> None:
        """Answer ``method path`` with ``answers`` in turn, repeating the last one."""
        queue = list(answers)

        def next_reply(_seen: Seen, _handler: BaseHTTPRequestHandler) -> Reply:
            return queue.pop(0) if len(queue) > 1 else queue[0]

        self.route(method, path, next_reply)

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(
                method=self.command,
                path=parts.path,
                query=parse_qsl(parts.query, keep_blank_values=True),
                headers={key.lower(): value for key, value in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            server.record(seen)
            route = server.routes.get((self.command, parts.path))
            reply = route(seen, self) if route else Reply(404, b'{"error":"NotFound"}')
            if reply is not None:
                self._send(reply)

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            headers = {"Content-Length": str(len(reply.body)), **reply.headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(reply.body)

    return Handler


def write_raw(handler: BaseHTTPRequestHandler, head: str, body: bytes, *, reset: bool) -> None:
    """Write a response by hand, then close the connection (with a TCP reset if asked)."""
    handler.wfile.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    handler.wfile.flush()
    if reset:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()


def token_route(prefix: str = "tok", expires_in: int = 1800) -> Route:
    """A token endpoint that hands out ``tok-1``, ``tok-2``, ... in turn."""
    counter = iter(range(1, 1_000_000))
    lock = threading.Lock()

    def grant(_seen: Seen, _handler: BaseHTTPRequestHandler) -> Reply:
        with lock:
            number = next(counter)
        payload = {"access_token": f"{prefix}-{number}", "token_type": "Bearer"}
        return Reply.json({**payload, "expires_in": expires_in})

    return grant
