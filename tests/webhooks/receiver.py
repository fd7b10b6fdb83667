"""A real webhook receiver on 127.0.0.1 for the tests: records every request, verifies the
signature like a user's receiver would (docs/webhooks.md), can answer errors, be slow, or be
down (its port closed) and come back on the same port."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lobby.webhooks import signing


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    signature_ok: bool

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers["anteroom-webhook-id"]


@dataclass
class Receiver:
    secret: str = ""
    status: int = 200
    delay: float = 0.0
    location: str = ""
    answer: bytes = b"ok"
    got: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    tls: ssl.SSLContext | None = None

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hooks/anteroom"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/anteroom?x=1"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = signing.verify(
                    receiver.secret,
                    headers.get("anteroom-webhook-timestamp", ""),
                    body,
                    headers.get("anteroom-webhook-signature", ""),
                    now=time.time(),
                )
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.got.append(Received(self.path, headers, body, time.time(), ok))
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                try:
                    self.wfile.write(receiver.answer)
                except ConnectionError:
                    pass  # the sender stopped reading at its size cap

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.daemon_threads = True
        server.server_bind()
        server.server_activate()
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down: the port is closed (connections are refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        with self.lock:
            return [r.delivery_id for r in self.got]

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.json for r in self.got]

    def wait_for(self, n: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.got) >= n:
                    return list(self.got)
            time.sleep(0.02)
        raise AssertionError(f"receiver got {len(self.got)} of {n} deliveries")
