"""Shared fixtures: factories, socket clients, event capture, Daphne subprocesses, Chromium."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", ROOT / "artifacts"))
ORIGIN = (b"origin", b"http://127.0.0.1")
HOST = (b"host", b"127.0.0.1")  # the handshake's served origin is then ORIGIN exactly
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def pytest_configure(config: Any) -> None:
    # Live servers fork Daphne; a forked child inherits asgiref's dead executor. Use spawn.
    multiprocessing.set_start_method("spawn", force=True)


@pytest.fixture(autouse=True)
def _fresh_channel_layers():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _no_background_sweeper(settings):
    """Tests move ``lobby.clock`` and sweep explicitly. (The environment default above comes
    too late: pytest-django has loaded the settings before this module is imported.) Daphne
    subprocesses get ``ANTEROOM_RUN_SWEEPER=1`` from ``start_daphne``."""
    settings.ANTEROOM_RUN_SWEEPER = False


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test's database starts empty (a flush sends no signals): so does ``lobby.cache``."""
    from lobby import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _reset_clock():
    from lobby import clock

    clock.reset()
    yield
    clock.reset()


# Factories -----------------------------------------------------------------------------------


def make_room(name: str = "clinic", **fields: Any):
    from lobby.services import Actor, room_create

    return room_create(actor=Actor.command("tests"), name=name, **fields)


def make_token(room: str | None = "clinic", **claims: Any) -> str:
    from lobby.tokens import mint_token

    return mint_token(room=room, **claims)


def forge(
    payload: dict[str, Any], key: str | bytes | None = None, alg: str = "HS256", headers=None
) -> str:
    """A hand-made JWT (tests only; the project mints through lobby.tokens)."""
    import jwt
    from django.conf import settings

    base = {"aud": "anteroom", "exp": int(time.time()) + 3600}
    return jwt.encode(
        {**base, **payload},
        key if key is not None else settings.ANTEROOM_SIGNING_KEY,
        algorithm=alg,
        headers=headers,
    )


@pytest.fixture
def room(db):
    return make_room("clinic", privacy="private", enable_knocking=True)


# Event capture for sync service tests --------------------------------------------------------


class Sent:
    """Every (group, message) the services sent after commit, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def frames(self, group_prefix: str = "") -> list[dict[str, Any]]:
        return [f for g, m in self.items if g.startswith(group_prefix) for f in m.get("frames", [])]

    def types(self, group_prefix: str = "") -> list[str]:
        return [f["type"] for f in self.frames(group_prefix)]

    def to(self, group: str) -> list[dict[str, Any]]:
        return [m for g, m in self.items if g == group]


@pytest.fixture
def sent(monkeypatch):
    from lobby import events

    box = Sent()

    # As delivery does after the commit: a queue broadcast gets the lobby's order read then.
    def fake_send(group, message):
        box.items.extend(events._with_orders([(group, message)]))

    async def fake_batch(batch):
        box.items.extend(batch)  # the batch's queue orders are read before this runs

    monkeypatch.setattr(events, "_send_now", fake_send)
    monkeypatch.setattr(events, "_send_batch", fake_batch)
    return box


# WebSocket clients ---------------------------------------------------------------------------


class Client:
    """A WebsocketCommunicator with helpers that wait for a frame type."""

    def __init__(
        self,
        room: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        client=("127.0.0.1", 50000),
    ):
        from channels.testing import WebsocketCommunicator

        from config.asgi import application

        self.comm = WebsocketCommunicator(
            application, f"/ws/rooms/{room}/", headers=[ORIGIN, HOST, *(headers or [])]
        )
        self.comm.scope["client"] = tuple(client)
        self.seen: list[dict[str, Any]] = []
        self.unread: list[dict[str, Any]] = []  # frames skipped by request()/expect()
        self.closed: int | None = None

    async def connect(self) -> Client:
        ok, _ = await self.comm.connect()
        assert ok
        return self

    async def send(self, **msg: Any) -> None:
        await self.comm.send_to(text_data=json.dumps(msg))

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        await self.comm.send_to(text_data=text, bytes_data=data)

    async def recv(self, timeout: float = 3) -> dict[str, Any]:
        out = await self.comm.receive_output(timeout)
        if out["type"] == "websocket.close":
            self.closed = out.get("code", 1000)
            return {"type": "__closed__", "code": self.closed}
        frame = json.loads(out["text"])
        self.seen.append(frame)
        return frame

    async def expect(self, kind: str, timeout: float = 3) -> dict[str, Any]:
        """The first unread frame of ``kind``, waiting for it if needed (all frames are kept in
        ``seen``; skipped ones stay unread for a later ``expect``)."""
        for i, f in enumerate(self.unread):
            if f["type"] == kind:
                return self.unread.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind!r} frame; saw {[f['type'] for f in self.seen]}")
            frame = await self.recv(left)
            if frame["type"] == kind:
                return frame
            if frame["type"] == "__closed__":
                raise AssertionError(f"closed ({frame['code']}) before {kind!r}; saw {self.seen}")
            self.unread.append(frame)

    async def request(self, kind: str, rid: Any = 1, **fields: Any) -> dict[str, Any]:
        await self.send(type=kind, rid=rid, **fields)
        deadline = time.monotonic() + 3
        while True:
            frame = await self.recv(max(0.1, deadline - time.monotonic()))
            if frame["type"] == "ack" and frame["rid"] == rid:
                return frame
            if frame["type"] == "__closed__":
                raise AssertionError(f"closed ({frame['code']}) before ack; saw {self.seen}")
            self.unread.append(frame)

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.comm.receive_nothing(timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.comm.disconnect()


@pytest.fixture
async def clients():
    made: list[Client] = []

    async def factory(room: str = "clinic", **kw: Any) -> Client:
        c = Client(room, **kw)
        await c.connect()
        made.append(c)
        return c

    yield factory
    for c in made:
        await c.close()


# Daphne subprocesses -------------------------------------------------------------------------


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} not up after {timeout}s")


def start_daphne(
    env_extra: dict[str, str], log_path: Path, port: int = 0
) -> tuple[subprocess.Popen[bytes], str]:
    """Daphne on 127.0.0.1; the parent binds the port and passes the socket with --fd."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ANTEROOM_RUN_SWEEPER": "1",
        **env_extra,
    }
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(512)
    port = sock.getsockname()[1]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(sock.fileno()), "config.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=[sock.fileno()],
        )
    sock.close()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(base + "/healthz", proc)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return proc, base


def stop_daphne(proc: subprocess.Popen[bytes], sig: str = "term") -> None:
    if sig == "kill":
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def manage(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout
