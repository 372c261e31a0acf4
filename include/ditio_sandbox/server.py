"""Socket side of the sandbox: a threading HTTP/1.1 server and its request handler.

Bodies are written in chunks with an exact Content-Length so keep-alive works; the fault
actions `reset` (RST before anything or after the headers) and `truncate` (fewer body
bytes than announced, then close) are carried out here.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ditio_sandbox.app import App, Request, Response, classify, error_response

logger = logging.getLogger(__name__)
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class SandboxHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks open connections so `close_all` can end them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, SandboxHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        """Shut down every open connection (idle keep-alive ones included)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("Connection from %s ended with an error", client_address, exc_info=True)


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DitioSandbox/1.0"
    sys_version = ""
    timeout = 120
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle's algorithm
        # and delayed ACKs add ~40 ms to every small response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        app = self.server.app
        request = self._read_request()
        endpoint, file_id = classify(request.path)
        app.stats.begin(endpoint)
        started = time.monotonic()
        response: Response | None = None
        sent = 0
        try:
            response = self._answer(request, endpoint, file_id)
            sent = self._write(response, head_only=request.method == "HEAD")
        finally:
            entry = {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "endpoint": endpoint,
                "status": response.status if response else 500,
                "has_authorization": "Authorization" in request.headers,
                "bytes_sent": sent,
                "fault": response.fault if response else None,
                "duration_s": round(time.monotonic() - started, 6),
                "client": "{}:{}".format(*self.client_address[:2]),
            }
            app.stats.end(endpoint, entry)

    def _answer(self, request: Request, endpoint: str, file_id: str | None) -> Response:
        try:
            return self.server.app.handle(request, endpoint, file_id)
        except Exception:
            # A real server answers 500 rather than dropping the connection.
            logger.exception("Sandbox failed on %s %s", request.method, request.path)
            return error_response(500, "InternalError", "The sandbox failed; see its log")

    def _read_request(self) -> Request:
        parts = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
            self.close_connection = True
        body = self.rfile.read(length) if length > 0 else b""
        return Request(self.command, parts.path, parts.query, self.headers, body)

    def _write(self, response: Response, head_only: bool) -> int:
        if response.reset == "start":
            self._abort()
            return 0
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(response.size))
        self.end_headers()
        if response.reset == "headers":
            self._abort()
            return 0
        if head_only:
            return 0
        limit = response.size
        if response.truncate is not None:
            limit = int(response.size * response.truncate)
            self.close_connection = True
        return self._write_body(response, limit)

    def _write_body(self, response: Response, limit: int) -> int:
        chunks = response.stream if response.stream is not None else iter([response.body])
        sent = 0
        try:
            for chunk in chunks:
                piece = chunk[: limit - sent]
                if piece:
                    self.wfile.write(piece)
                    sent += len(piece)
                if sent >= limit:
                    break
        except _CLIENT_GONE:
            self.close_connection = True
        return sent

    def _abort(self) -> None:
        """Close the connection with a TCP reset instead of an orderly FIN."""
        self.close_connection = True
        with suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
