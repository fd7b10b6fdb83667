"""Helpers for the multi-process scale tests: a fresh PostgreSQL database, Redis, Daphne
processes sharing them, a TCP proxy that can cut a backing service, and a browser-like client.

PostgreSQL: ``TEST_DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/postgres``) is
only used to create and drop ``anteroom_scale_<random>``. Redis: ``TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``), with a unique channel prefix per cluster. Unreachable services
skip the tests, or fail them when ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.servers import manage, start_daphne, stop_daphne

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ).close()
    except OSError:
        return False
    return True


def require_services() -> None:
    missing = [
        name
        for name, url, port in (("PostgreSQL", PG_URL, 5432), ("Redis", REDIS_URL, 6379))
        if not _reachable(url, port)
    ]
    if missing:
        reason = f"{' and '.join(missing)} not reachable ({PG_URL}, {REDIS_URL})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, migrated database ``anteroom_scale_<random>``; dropped afterwards."""
    import psycopg

    name = f"anteroom_scale_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(PG_URL, name)
    try:
        manage("migrate", "--noinput", "-v0", env={"DATABASE_URL": url, "REDIS_URL": ""})
        yield url
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A throwaway ``redis-server`` on a free port (never the machine's shared one)."""

    def __init__(self, tmp: Path) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            reason = "redis-server is not installed"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.binary is not None
        log = open(self.tmp / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _reachable(self.url, self.port):
                return
            time.sleep(0.05)
        raise TimeoutError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # like a crash: nothing saved, every group lost
            self.proc.wait(10)
        self.proc = None


class TcpProxy:
    """A loopback TCP proxy on the test's event loop; ``cut()`` drops every connection and
    refuses new ones (the service is "down"), ``restore()`` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def to_url(cls, url: str, default_port: int) -> TcpProxy:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or default_port)

    def url_for(self, url: str) -> str:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(
            parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host)
        )

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        with contextlib.suppress(Exception):
            w.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(*self.target)
        except OSError:
            w.close()
            return
        self.writers |= {w, uw}
        await asyncio.gather(self._pipe(r, uw), self._pipe(ur, w))
        self.writers -= {w, uw}

    async def cut(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for w in list(self.writers):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self.writers.clear()
        if server is not None:
            # Python 3.12 waits here for every connection to close (aborted above).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def restore(self) -> None:
        await self.start()


class Cluster:
    """N Daphne processes of this checkout sharing one database and one Redis."""

    def __init__(self, tmp: Path, database_url: str, redis_url: str, **env: str) -> None:
        self.tmp = tmp
        self.env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "ANTEROOM_CHANNEL_PREFIX": f"scale{secrets.token_hex(4)}",
            "ANTEROOM_SIGNING_KEY": secrets.token_urlsafe(48),
            "ANTEROOM_SWEEP_INTERVAL": "0.5",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.procs: list[Any] = []
        self.bases: list[str] = []
        self.logs: list[Path] = []
        self.key = ""

    def start(self, n: int = 2) -> Cluster:
        self.key = manage("create_api_key", f"scale-{secrets.token_hex(4)}", env=self.env)
        self.key = self.key.strip().splitlines()[-1].strip()
        for i in range(n):
            log = self.tmp / f"daphne-{i}.log"
            proc, base = start_daphne(self.env, log)
            self.procs.append(proc)
            self.bases.append(base)
            self.logs.append(log)
        return self

    def stop(self) -> None:
        for p in self.procs:
            stop_daphne(p)

    def logs_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs if p.exists())

    def rest(self, method: str, path: str, body: Any = None, i: int = 0) -> tuple[int, Any, Any]:
        req = urllib.request.Request(
            self.bases[i] + path
            if path.startswith("/readyz")
            else self.bases[i] + "/api/v1" + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, json.loads(resp.read() or b"null"), resp.headers
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null"), exc.headers

    def room(self, name: str, **props: Any) -> None:
        status, body, _ = self.rest(
            "POST",
            "/rooms",
            {
                "name": name,
                "privacy": "private",
                "properties": {"enable_knocking": True, "max_active_talkers": 50, **props},
            },
        )
        assert status == 200, body

    def token(self, room: str, **props: Any) -> str:
        status, body, _ = self.rest(
            "POST", "/meeting-tokens", {"properties": {"room_name": room, **props}}
        )
        assert status == 200, body
        return str(body["token"])
