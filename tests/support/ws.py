"""The one WebSocket test client, over two transports.

``Frames`` holds what every test socket does with frames: keep every frame in ``seen``,
``expect`` a type (skipped frames stay ``unread`` for a later ``expect``), ``request`` (send
with an ``rid``, wait for its ``ack``), ``drain``. Two transports feed it:

* ``Client``: in-process, Channels' ``WebsocketCommunicator`` on ``config.asgi.application``
  (the service and socket suites; a close is read as a ``{"type": "__closed__"}`` frame);
* ``Ws``: a real socket to a Daphne process (the ``websockets`` library, with an ``Origin``, as
  a browser connects; a close raises ``ConnectionClosed`` and sets ``close_code``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

ORIGIN = (b"origin", b"http://127.0.0.1")
HOST = (b"host", b"127.0.0.1")  # the handshake's served origin is then ORIGIN exactly
CLOSED = "__closed__"


class Frames:
    """Frame bookkeeping shared by both transports (``recv`` is the transport's)."""

    timeout: float = 3.0  # how long expect() and request() wait by default

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.seen: list[dict[str, Any]] = []
        self.unread: list[dict[str, Any]] = []  # frames skipped by request()/expect()

    async def recv(self, timeout: float) -> dict[str, Any]:
        raise NotImplementedError

    async def send(self, **msg: Any) -> None:
        raise NotImplementedError

    def _rid(self) -> Any:
        return secrets.token_hex(4)

    def _deadline(self, timeout: float | None) -> float:
        return asyncio.get_running_loop().time() + (self.timeout if timeout is None else timeout)

    def _missing(self, what: str) -> AssertionError:
        types = [f["type"] for f in self.seen]
        return AssertionError(f"{self.label + ': ' if self.label else ''}no {what}; saw {types}")

    async def expect(self, kind: str, timeout: float | None = None, **match: Any) -> dict[str, Any]:
        """The first unread frame of ``kind`` (whose fields equal ``match``), waiting for it if
        needed. All frames are kept in ``seen``; skipped ones stay unread."""

        def ok(f: dict[str, Any]) -> bool:
            return f["type"] == kind and all(f.get(k) == v for k, v in match.items())

        for i, f in enumerate(self.unread):
            if ok(f):
                return self.unread.pop(i)
        deadline = self._deadline(timeout)
        loop = asyncio.get_running_loop()
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise self._missing(f"{kind!r} frame")
            try:
                frame = await self.recv(left)
            except TimeoutError:
                continue
            if ok(frame):
                return frame
            if frame["type"] == CLOSED:
                raise AssertionError(f"closed ({frame['code']}) before {kind!r}; saw {self.seen}")
            self.unread.append(frame)

    async def request(
        self, kind: str, rid: Any = None, timeout: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Send ``kind`` with an ``rid`` and return its ``ack`` (read from new frames only;
        the others stay unread)."""
        rid = self._rid() if rid is None else rid
        await self.send(type=kind, rid=rid, **fields)
        deadline = self._deadline(timeout)
        loop = asyncio.get_running_loop()
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise self._missing(f"ack for {kind!r}")
            try:
                frame = await self.recv(max(0.1, left))
            except TimeoutError:
                continue
            if frame["type"] == "ack" and frame.get("rid") == rid:
                return frame
            if frame["type"] == CLOSED:
                raise AssertionError(f"closed ({frame['code']}) before ack; saw {self.seen}")
            self.unread.append(frame)

    async def drain(self, seconds: float) -> list[dict[str, Any]]:
        """Everything that arrives within ``seconds`` (plus what was unread)."""
        out, self.unread = self.unread, []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                frame = await self.recv(left)
            except (TimeoutError, ConnectionClosed):
                break
            if frame["type"] == CLOSED:
                break
            out.append(frame)
        return out


class Client(Frames):
    """In-process: a ``WebsocketCommunicator`` on ``config.asgi.application``."""

    def __init__(
        self,
        room: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        client=("127.0.0.1", 50000),
    ):
        from channels.testing import WebsocketCommunicator

        from config.asgi import application

        super().__init__()
        self.comm = WebsocketCommunicator(
            application, f"/ws/rooms/{room}/", headers=[ORIGIN, HOST, *(headers or [])]
        )
        self.comm.scope["client"] = tuple(client)
        self.closed: int | None = None

    def _rid(self) -> Any:
        return 1

    async def connect(self) -> Client:
        ok, _ = await self.comm.connect()
        assert ok
        return self

    async def send(self, **msg: Any) -> None:
        await self.comm.send_to(text_data=json.dumps(msg))

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        await self.comm.send_to(text_data=text, bytes_data=data)

    async def recv(self, timeout: float = 3) -> dict[str, Any]:
        # Not ``comm.receive_output``: on a timeout it cancels the application, so one frame
        # that came late (a failing test) would leave a consumer that never ran its disconnect,
        # its database connection still open, for the tests after it to trip over.
        if self.comm.future.done():
            self.comm.future.result()  # the application ended: raise what it raised
        out = await asyncio.wait_for(self.comm.output_queue.get(), timeout)
        if out["type"] == "websocket.close":
            self.closed = out.get("code", 1000)
            return {"type": CLOSED, "code": self.closed}
        frame = json.loads(out["text"])
        self.seen.append(frame)
        return frame

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.comm.receive_nothing(timeout)

    async def close(self) -> None:
        if self.comm.future.done():
            return  # the application has ended (closed the socket, or raised)
        with contextlib.suppress(Exception):
            await self.comm.disconnect()


class Ws(Frames):
    """Over the network, to a Daphne process, as a browser connects."""

    timeout = 15.0

    def __init__(self, ws: ClientConnection, label: str) -> None:
        super().__init__(label)
        self.ws = ws
        self.close_code: int | None = None

    @classmethod
    async def open(cls, base: str, room: str, label: str = "") -> Ws:
        url = base.replace("http://", "ws://") + f"/ws/rooms/{room}/"
        return cls(await connect(url, origin=Origin(base), open_timeout=10), label or room)

    async def send(self, **msg: Any) -> None:
        await self.ws.send(json.dumps(msg))

    async def recv(self, timeout: float) -> dict[str, Any]:
        try:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        except ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd else 1006
            raise
        self.seen.append(frame)
        return frame

    async def wait_closed(self, timeout: float = 15) -> None:
        """Read (and keep in ``seen``) until the server closes the socket."""
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            while True:
                await self.recv(timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
