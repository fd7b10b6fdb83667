"""``manage.py loadtest``: the scenarios, the targets (Anteroom and the bare relays), the report.

One clock (``time.perf_counter`` of this process) for scheduling and receiving. Paced scenarios
are open-loop: each send has a scheduled time and its latency counts from that time, so a slow
server (or a client falling behind) shows up as latency, never as a slower schedule. Every wait
is bounded; a scenario that runs out of time reports what it has and counts the rest as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect

from . import launch
from .profile import Profiler

ROOT = Path(__file__).resolve().parent.parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


# Numbers ------------------------------------------------------------------------------------


@dataclass
class Sizes:
    # Paced knocks: one run per rate, each at least ``knock_guests`` knocks and at least
    # ``knock_seconds`` long (so 500/s is sustained for a while, not a burst).
    knock_rates: tuple[float, ...] = (20.0, 100.0)
    knock_guests: int = 200
    knock_seconds: float = 3.0
    storm_guests: int = 200
    admit_guests: int = 1000
    invite_participants: int = 490  # 10 rooms x 49 (capacity <= max_active_talkers - 1 = 49)
    invite_rooms: int = 10
    idle_sockets: int = 10000
    idle_room_size: int = 25
    connects: int = 2000
    connect_concurrency: int = 50

    def knocks_at(self, rate: float) -> int:
        return max(self.knock_guests, round(rate * self.knock_seconds))

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            knock_rates=(20.0, 100.0),
            knock_guests=20,
            knock_seconds=0.0,
            storm_guests=20,
            admit_guests=30,
            invite_participants=20,
            invite_rooms=2,
            idle_sockets=100,
            idle_room_size=25,
            connects=60,
            connect_concurrency=10,
        )


def knock_scenario(rate: float) -> str:
    """The row name of knocks paced at ``rate`` per second: ``knock20``, ``knock100``."""
    return f"knock{rate:g}"


SCENARIOS = ("knock", "storm", "admit_all", "invite", "connects", "idle")


@dataclass
class Result:
    scenario: str
    target: str
    ops: int = 0
    lost: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    completion_ms: float | None = None
    cpu_ms_per_op: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "scenario": self.scenario,
            "target": self.target,
            "ops": self.ops,
            "lost": self.lost,
            "p50_ms": _pct(lat, 50),
            "p99_ms": _pct(lat, 99),
            "max_ms": round(lat[-1], 2) if lat else None,
            "completion_ms": _r(self.completion_ms),
            "cpu_ms_per_op": _r(self.cpu_ms_per_op, 3),
            **{k: _r(v) if isinstance(v, float) else v for k, v in self.extra.items()},
            "error": self.error,
        }


def _r(v: float | None, digits: int = 2) -> float | None:
    return None if v is None else round(v, digits)


def _pct(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return round(sorted_values[i], 2)


# Process metrics ----------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float | None:
    if not pids:
        return None
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def rss_kib(pids: list[int]) -> int | None:
    if not pids:
        return None
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            return None
    return total


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


# Targets ------------------------------------------------------------------------------------


class Target:
    """Something that speaks the protocol: Anteroom (REST + sockets) or a bare relay."""

    name: str
    ws_bases: list[str]  # ws://host:port, one per server process
    pids: list[int]
    profiler: Profiler | None = None  # --profile: py-spy over each measured phase
    served = 0  # scenarios run on these processes since they started (or since this run began)

    async def room(self, *, size_hint: int, knock_ttl: int | None = None) -> str:
        raise NotImplementedError

    async def tokens(self, room: str, specs: list[dict[str, Any]]) -> list[str]:
        raise NotImplementedError

    def url(self, i: int, room: str) -> str:
        return f"{self.ws_bases[i % len(self.ws_bases)]}/ws/rooms/{room}/"

    def restart(self) -> bool:
        """New server processes in place of these (same database, keys and settings); False
        when this run did not start them (``--url``)."""
        return False

    def close(self) -> None:
        pass


# Every server process this run started, so that an interrupted run still stops them all.
STARTED: list[subprocess.Popen[bytes]] = []


def stop_all() -> None:
    _stop(STARTED)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    launch.stop(procs)


class Rest:
    """A tiny JSON client for the REST API (stdlib only)."""

    def __init__(self, base: str, api_key: str) -> None:
        self.base, self.api_key = base.rstrip("/"), api_key

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.base}/api/v1{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as exc:
                if exc.code in (429, 503) and attempt < 4:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise RuntimeError(
                    f"{method} {path}: HTTP {exc.code} {exc.read()[:200]!r}"
                ) from exc
        raise RuntimeError("unreachable")


class Anteroom(Target):
    def __init__(
        self,
        name: str,
        http_bases: list[str],
        api_key: str,
        pids: list[int],
        procs: list[subprocess.Popen[bytes]] | None = None,
        cleanup: Callable[[], None] | None = None,
        relaunch: Callable[[], tuple[list[subprocess.Popen[bytes]], list[str]]] | None = None,
    ) -> None:
        self.name = name
        self.api_key = api_key
        self._bind(http_bases, pids)
        self.procs = procs or []
        self._cleanup = cleanup
        self._relaunch = relaunch

    def _bind(self, http_bases: list[str], pids: list[int]) -> None:
        self.http_bases = http_bases
        self.ws_bases = [b.replace("http", "ws", 1) for b in http_bases]
        self.rest = Rest(http_bases[0], self.api_key)
        self.pids = pids

    def restart(self) -> bool:
        if self._relaunch is None:
            return False
        _stop(self.procs)
        self.procs, bases = self._relaunch()
        self._bind(bases, [p.pid for p in self.procs])
        self.served = 0
        return True

    async def room(self, *, size_hint: int, knock_ttl: int | None = None) -> str:
        name = f"lt-{secrets.token_hex(5)}"
        properties: dict[str, Any] = {"enable_knocking": True, "max_active_talkers": 50}
        if knock_ttl is not None:
            properties["knock_ttl"] = knock_ttl
        await asyncio.to_thread(
            self.rest.call,
            "POST",
            "/rooms",
            {"name": name, "privacy": "private", "properties": properties},
        )
        return name

    async def tokens(self, room: str, specs: list[dict[str, Any]]) -> list[str]:
        sem = asyncio.Semaphore(8)

        async def one(spec: dict[str, Any]) -> str:
            async with sem:
                body = {"properties": {"room_name": room, **spec}}
                out = await asyncio.to_thread(self.rest.call, "POST", "/meeting-tokens", body)
                return str(out["token"])

        return list(await asyncio.gather(*(one(s) for s in specs)))

    def close(self) -> None:
        _stop(self.procs)
        if self._cleanup:
            self._cleanup()


def start_anteroom(
    *,
    processes: int,
    database_url: str | None,
    redis_url: str | None,
    log_dir: Path,
    python: str = sys.executable,
    fresh_database: bool = True,
) -> Anteroom:
    """Start ``processes`` Daphne processes of this checkout on free loopback ports.

    With PostgreSQL, each target runs on a new empty database made next to ``database_url``'s
    (``<name>_lt<hex>``, dropped afterwards) unless ``fresh_database`` is False: what one target
    left behind (thousands of waiting guests of a finished idle run, swept as "disconnected"
    once their process is gone) must not run through the next target's measurements."""
    drop_database: Callable[[], None] = lambda: None  # noqa: E731
    if database_url and database_url.startswith("postgres") and fresh_database:
        database_url, drop_database = _fresh_pg_database(database_url)
    try:
        return _start_anteroom(
            processes=processes,
            database_url=database_url,
            redis_url=redis_url,
            log_dir=log_dir,
            python=python,
            drop_database=drop_database,
        )
    except BaseException:
        drop_database()
        raise


def _start_anteroom(
    *,
    processes: int,
    database_url: str | None,
    redis_url: str | None,
    log_dir: Path,
    python: str,
    drop_database: Callable[[], None],
) -> Anteroom:
    tmp = Path(tempfile.mkdtemp(prefix="anteroom-loadtest-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url or f"sqlite:///{tmp / 'loadtest.sqlite3'}",
        "ANTEROOM_SIGNING_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ANTEROOM_CHANNEL_PREFIX": f"lt{secrets.token_hex(4)}",
        "ANTEROOM_RUN_SWEEPER": "1",
        # One client address opens thousands of sockets and knocks: lift the per-address caps.
        "ANTEROOM_MAX_SOCKETS_PER_ADDRESS": "1000000",
        "ANTEROOM_MAX_SOCKETS_PER_TOKEN": "1000000",
        "ANTEROOM_ADDRESS_KNOCK_LIMIT": "1000000/300",
        "ANTEROOM_ADDRESS_JOIN_LIMIT": "1000000/300",
        # Paced runs open every socket first and knock over several seconds.
        "ANTEROOM_JOIN_TIMEOUT": "300",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "0",
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    elif processes > 1:
        raise ValueError("--processes 2 needs --redis-url (the in-memory layer is per process)")
    manage = [python, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT, timeout=300)
    out = subprocess.run(
        [*manage, "create_api_key", f"loadtest-{secrets.token_hex(4)}"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    api_key = out.strip().splitlines()[-1]

    def launch_all() -> tuple[list[subprocess.Popen[bytes]], list[str]]:
        return _launch_many(
            processes,
            "http",
            log_dir / f"daphne-{processes}p",
            lambda fd: launch.daphne(fd, python),
            env=env,
        )

    procs, bases = launch_all()

    def cleanup() -> None:
        shutil.rmtree(tmp, ignore_errors=True)
        drop_database()

    layer = "redis" if redis_url else "memory"
    db = "pg" if database_url and database_url.startswith("postgres") else "sqlite"
    return Anteroom(
        f"anteroom-{processes}p-{db}-{layer}",
        bases,
        api_key,
        [p.pid for p in procs],
        procs,
        cleanup=cleanup,
        relaunch=launch_all,
    )


def _fresh_pg_database(url: str) -> tuple[str, Callable[[], None]]:
    """A new database beside ``url``'s (same server and role): (its URL, a function dropping it)."""
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'anteroom'}_lt{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    fresh = parts._replace(path=f"/{name}").geturl()

    def drop() -> None:
        with contextlib.suppress(Exception), psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return fresh, drop


class RelayTarget(Target):
    def __init__(
        self,
        name: str,
        ws_bases: list[str],
        key: str,
        procs: list[Any],
        relaunch: Callable[[], tuple[list[Any], list[str]]] | None = None,
    ) -> None:
        self.name = name
        self.ws_bases = ws_bases
        self.key = key
        self.procs = procs
        self.pids = [p.pid for p in procs]
        self._relaunch = relaunch

    def restart(self) -> bool:
        if self._relaunch is None:
            return False
        _stop(self.procs)
        self.procs, self.ws_bases = self._relaunch()
        self.pids = [p.pid for p in self.procs]
        self.served = 0
        return True

    async def room(self, *, size_hint: int, knock_ttl: int | None = None) -> str:
        return f"lt-{secrets.token_hex(5)}"

    async def tokens(self, room: str, specs: list[dict[str, Any]]) -> list[str]:
        from lobby.tokens import sign_payload  # the baseline signs its own tokens

        out = []
        now = int(time.time())
        for spec in specs:
            payload: dict[str, Any] = {
                "aud": "anteroom",
                "exp": now + 3600,
                "iat": now,
                "jti": secrets.token_urlsafe(16),
                "room": room,
            }
            if spec.get("user_id"):
                payload["sub"] = spec["user_id"]
            if spec.get("user_name"):
                payload["name"] = spec["user_name"]
            if spec.get("is_owner"):
                payload["owner"] = True
            if spec.get("join_policy"):
                payload["joinPolicy"] = spec["join_policy"]
            out.append(sign_payload(payload, self.key))
        return out

    def close(self) -> None:
        _stop(self.procs)


def _launch_many(
    processes: int,
    scheme: str,
    log_stem: Path,
    command: Callable[[int], list[str]],
    **options: Any,
) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """Start ``processes`` servers (``launch.launch(command, ...)``), logging to
    ``<log_stem>-<i>.log``; returns them and their ``scheme://127.0.0.1:port`` bases. If one
    fails to start, those already started are stopped."""
    procs: list[subprocess.Popen[bytes]] = []
    bases = []
    try:
        for i in range(processes):
            proc, port = launch.launch(
                command, log_path=log_stem.with_name(f"{log_stem.name}-{i}.log"), **options
            )
            procs.append(proc)
            STARTED.append(proc)
            bases.append(f"{scheme}://127.0.0.1:{port}")
    except Exception:
        _stop(procs)
        raise
    return procs, bases


def start_relay(*, processes: int, redis_url: str | None, log_dir: Path) -> RelayTarget:
    key = secrets.token_urlsafe(48)
    prefix = f"relay{secrets.token_hex(4)}"

    def relay_command(fd: int) -> list[str]:
        cmd = [sys.executable, "-m", "lobby.loadtest.relay", "--fd", str(fd)]
        cmd += ["--key", key, "--prefix", prefix]
        return [*cmd, "--redis", redis_url] if redis_url else cmd

    def launch_all() -> tuple[list[subprocess.Popen[bytes]], list[str]]:
        return _launch_many(
            processes,
            "ws",
            log_dir / f"relay-{processes}p",
            relay_command,
            ready_path="",
            timeout=30,
        )

    procs, bases = launch_all()
    name = f"relay-{processes}p-redis" if redis_url else "relay-1p-memory"
    return RelayTarget(name, bases, key, procs, relaunch=launch_all)


# Client sockets -----------------------------------------------------------------------------


def _origin_of(ws_url: str) -> str:
    """The page origin a browser on this socket's own server would send (exact Origin check)."""
    parts = urlsplit(ws_url)
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"


class Sock:
    """One client socket; frames are handed to ``on_frame(sock, frame, t)`` as they arrive."""

    def __init__(self, target: Target, url: str, tag: Any = None) -> None:
        self.target, self.url, self.tag = target, url, tag
        self.ws: ClientConnection | None = None
        self.on_frame: Callable[[Sock, dict[str, Any], float], None] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.waiters: list[tuple[Callable[[dict[str, Any]], bool], asyncio.Future[Any]]] = []

    async def open(self, *, read: bool = True, timeout: float = 20) -> Sock:
        self.ws = await connect(
            self.url,
            origin=_origin_of(self.url),  # type: ignore[arg-type]
            compression=None,
            open_timeout=timeout,
            max_size=2**24,
            ping_interval=None,
            close_timeout=2,
        )
        if read:
            self.reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(websockets.ConnectionClosed, asyncio.CancelledError):
            async for text in self.ws:
                t = time.perf_counter()
                frame = json.loads(text)
                if self.on_frame is not None:
                    self.on_frame(self, frame, t)
                for w in list(self.waiters):
                    pred, fut = w
                    if not fut.done() and pred(frame):
                        fut.set_result(frame)
                        self.waiters.remove(w)

    async def send(self, **msg: Any) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(msg, separators=(",", ":")))

    async def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters.append((pred, fut))
        return await asyncio.wait_for(fut, timeout)

    async def request(self, timeout: float = 30, **msg: Any) -> dict[str, Any]:
        rid = uuid.uuid4().hex[:12]
        waiting = asyncio.ensure_future(
            self.wait(lambda f: f.get("type") == "ack" and f.get("rid") == rid, timeout)
        )
        await self.send(rid=rid, **msg)
        ack = await waiting
        if not ack.get("ok"):
            raise RuntimeError(f"{msg.get('type')} failed: {ack.get('error')}")
        return ack

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 3)


async def open_many(
    target: Target, urls: list[str], *, concurrency: int = 100, read: bool = True
) -> list[Sock]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, url: str) -> Sock:
        async with sem:
            for attempt in range(3):
                try:
                    return await Sock(target, url, tag=i).open(read=read)
                except (OSError, websockets.InvalidHandshake, TimeoutError):
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.5)
            raise RuntimeError("unreachable")

    return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(urls))))


async def _open_retrying(sock: Sock) -> Sock:
    """Open a socket of a scenario's set-up, retried like ``open_many``: on a busy machine a
    handshake may be refused (Daphne's handshake timeout), which is not what is measured."""
    for attempt in range(3):
        try:
            return await sock.open()
        except (OSError, websockets.InvalidHandshake, TimeoutError):
            if attempt == 2:
                raise
            await asyncio.sleep(0.5)
    raise RuntimeError("unreachable")


async def close_all(socks: list[Sock]) -> None:
    for i in range(0, len(socks), 500):
        await asyncio.gather(*(s.close() for s in socks[i : i + 500]))


async def moderator(target: Target, room: str, *, url_index: int = -1) -> Sock:
    (tok,) = await target.tokens(
        room, [{"is_owner": True, "user_id": f"mod-{room}", "user_name": "Moderator"}]
    )
    idx = url_index % len(target.ws_bases)
    mod = await Sock(target, target.url(idx, room)).open()
    await mod.request(type="join", token=tok)
    return mod


async def knocking_guests(
    target: Target, room: str, n: int, tag: str
) -> tuple[list[Sock], list[str]]:
    specs = [
        {"user_id": f"{tag}{i}", "user_name": f"{tag}{i}", "join_policy": {"mode": "ask"}}
        for i in range(n)
    ]
    toks = await target.tokens(room, specs)
    socks = await open_many(target, [target.url(i, room) for i in range(n)])
    return socks, toks


# Scenarios ----------------------------------------------------------------------------------


Scenario = Callable[[Target, Sizes, float], Awaitable[Result]]


async def settle(target: Target, *, limit: float = 60.0, busy: float = 0.1) -> float:
    """Wait until the server processes are quiet (under ``busy`` of a core each over half a
    second), so that a measured phase does not pay for the previous phase's fan-out. Returns
    the seconds waited (bounded by ``limit``)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        before = cpu_seconds(target.pids)
        await asyncio.sleep(0.5)
        after = cpu_seconds(target.pids)
        if before is None or after is None:
            await asyncio.sleep(1.0)
            break
        if after - before < busy * 0.5 * len(target.pids):
            break
    return time.perf_counter() - t0


class Phase:
    """The measured part of a scenario: server CPU between ``start`` and ``stop`` and, with
    ``--profile``, py-spy samples of the server processes over the same interval."""

    def __init__(self, target: Target, scenario: str) -> None:
        self.target, self.label = target, f"{target.name}-{scenario}"
        self.cpu0: float | None = None
        self.cpu1: float | None = None

    def start(self) -> None:
        if self.target.profiler is not None:
            self.target.profiler.start(self.label, self.target.pids)
        self.cpu0 = cpu_seconds(self.target.pids)

    def stop(self) -> None:
        self.cpu1 = cpu_seconds(self.target.pids)
        if self.target.profiler is not None:
            self.target.profiler.stop()

    def cpu_per_op(self, ops: int) -> float | None:
        return _cpu_per_op(self.cpu0, self.cpu1, ops)


def _cpu_per_op(before: float | None, after: float | None, ops: int) -> float | None:
    if before is None or after is None or ops <= 0:
        return None
    return (after - before) * 1000 / ops


async def _knock(
    target: Target, sizes: Sizes, timeout: float, *, storm: bool, rate: float = 0.0
) -> Result:
    name = "storm" if storm else knock_scenario(rate)
    n = sizes.storm_guests if storm else sizes.knocks_at(rate)
    res = Result(name, target.name, ops=n)
    room = await target.room(size_hint=n)
    mod = await moderator(target, room)
    guests, toks = await knocking_guests(target, room, n, "g")
    arrived: dict[str, float] = {}
    all_in = asyncio.Event()

    def on_mod(_: Sock, frame: dict[str, Any], t: float) -> None:
        if frame.get("type") == "entry-requested":
            arrived.setdefault(frame["request"]["name"], t)
            if len(arrived) >= n:
                all_in.set()

    mod.on_frame = on_mod
    await settle(target, limit=5.0)
    phase = Phase(target, res.scenario)
    phase.start()
    t0 = time.perf_counter() + 0.2
    interval = 0 if storm else 1 / rate
    scheduled = [t0 + i * interval for i in range(n)]

    async def send(i: int) -> None:
        delay = scheduled[i] - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await guests[i].send(type="join", token=toks[i])

    if storm:
        # All sends issued back to back at t0 (as fast as one client can write them).
        await asyncio.sleep(max(0, t0 - time.perf_counter()))
        for i in range(n):
            await guests[i].send(type="join", token=toks[i])
    else:
        await asyncio.gather(*(send(i) for i in range(n)))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_in.wait(), timeout)
    phase.stop()
    for i in range(n):
        t = arrived.get(f"g{i}")
        if t is not None:
            res.latencies_ms.append((t - scheduled[i]) * 1000)
    res.lost = n - len(res.latencies_ms)
    if arrived:
        res.completion_ms = (max(arrived.values()) - t0) * 1000
    res.cpu_ms_per_op = phase.cpu_per_op(n)
    await close_all([mod, *guests])
    return res


def scenario_knock_at(rate: float) -> Scenario:
    async def scenario(target: Target, sizes: Sizes, timeout: float) -> Result:
        return await _knock(target, sizes, timeout, storm=False, rate=rate)

    return scenario


async def scenario_storm(target: Target, sizes: Sizes, timeout: float) -> Result:
    return await _knock(target, sizes, timeout, storm=True)


async def scenario_admit_all(target: Target, sizes: Sizes, timeout: float) -> Result:
    n = sizes.admit_guests
    res = Result("admit_all", target.name, ops=n)
    # The longest knock_ttl: on a busy machine 1,000 knocks can take minutes, and a knock that
    # timed out meanwhile is not admitted (it would count as lost, which is not admit-all's).
    room = await target.room(size_hint=n, knock_ttl=600)
    mod = await moderator(target, room)
    specs = [
        {"user_id": f"a{i}", "user_name": f"a{i}", "join_policy": {"mode": "ask"}} for i in range(n)
    ]
    toks = await target.tokens(room, specs)
    sem = asyncio.Semaphore(50)

    async def knock(i: int) -> Sock:
        async with sem:
            s = await _open_retrying(Sock(target, target.url(i, room), tag=i))
            await s.request(type="join", token=toks[i], timeout=timeout)
            return s

    guests = list(await asyncio.wait_for(asyncio.gather(*(knock(i) for i in range(n))), timeout))
    res.extra["settle_s"] = await settle(target)  # the knocks' fan-out drains first
    joined: dict[int, float] = {}
    done = asyncio.Event()

    def on_guest(s: Sock, frame: dict[str, Any], t: float) -> None:
        if frame.get("type") == "joined":
            joined.setdefault(s.tag, t)
            if len(joined) >= n:
                done.set()

    for g in guests:
        g.on_frame = on_guest
    phase = Phase(target, res.scenario)
    phase.start()
    t0 = time.perf_counter()
    ack = await mod.request(type="admit-all", timeout=timeout)
    res.extra["ack_ms"] = (time.perf_counter() - t0) * 1000
    res.extra["admitted"] = ack["data"].get("count")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout)
    phase.stop()
    res.latencies_ms = [(t - t0) * 1000 for t in joined.values()]
    res.lost = n - len(joined)
    if joined:
        res.completion_ms = (max(joined.values()) - t0) * 1000
    res.cpu_ms_per_op = phase.cpu_per_op(n)
    await close_all([mod, *guests])
    return res


async def scenario_invite(target: Target, sizes: Sizes, timeout: float) -> Result:
    n, rooms = sizes.invite_participants, sizes.invite_rooms
    capacity = max(2, -(-n // rooms))
    res = Result("invite", target.name, ops=n)
    room = await target.room(size_hint=n)
    mod = await moderator(target, room)
    specs = [{"user_id": f"p{i}", "user_name": f"p{i}"} for i in range(n)]
    toks = await target.tokens(room, specs)
    sem = asyncio.Semaphore(20)

    async def join(i: int) -> Sock:
        # Open and join in one go: a socket must join within 10 s of connecting.
        async with sem:
            s = await _open_retrying(Sock(target, target.url(i, room), tag=i))
            await s.request(type="join", token=toks[i], timeout=timeout)
            return s

    people = list(await asyncio.wait_for(asyncio.gather(*(join(i) for i in range(n))), timeout))
    res.extra["settle_s"] = await settle(target)  # participant-joined fan-out (n^2) drains
    got: dict[int, float] = {}
    done = asyncio.Event()

    def on_p(s: Sock, frame: dict[str, Any], t: float) -> None:
        if frame.get("type") == "breakout-invitation":
            got.setdefault(s.tag, t)
            if len(got) >= n:
                done.set()

    for p in people:
        p.on_frame = on_p
    phase = Phase(target, res.scenario)
    phase.start()
    t0 = time.perf_counter()
    ack = await mod.request(
        type="breakout-create-and-invite",
        participants=capacity,
        max_rooms=rooms,
        audio=True,
        video=True,
        canvas=False,
        share=False,
        timeout=timeout,
    )
    res.extra["ack_ms"] = (time.perf_counter() - t0) * 1000
    assigned = sum(len(v) for v in (ack["data"].get("assignments") or {}).values())
    res.extra["assigned"] = assigned
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout)
    phase.stop()
    res.latencies_ms = [(t - t0) * 1000 for t in got.values()]
    res.ops = assigned
    res.lost = assigned - len(got)
    if got:
        res.completion_ms = (max(got.values()) - t0) * 1000
    res.cpu_ms_per_op = phase.cpu_per_op(max(1, assigned))
    await close_all([mod, *people])
    return res


async def scenario_connects(target: Target, sizes: Sizes, timeout: float) -> Result:
    n, conc = sizes.connects, sizes.connect_concurrency
    res = Result("connects", target.name, ops=n)
    room = await target.room(size_hint=0)
    toks = await target.tokens(room, [{"user_name": "c"} for _ in range(conc)])
    lat: list[float] = []
    failed = 0
    counter = iter(range(n))

    async def worker(w: int) -> None:
        nonlocal failed
        for i in counter:
            t = time.perf_counter()
            s = Sock(target, target.url(i, room))
            try:
                await s.open(read=False, timeout=10)
                assert s.ws is not None
                await s.send(type="preauth", token=toks[w])
                frame = json.loads(await asyncio.wait_for(s.ws.recv(), 10))
                if frame.get("type") != "access-state":
                    raise RuntimeError(str(frame))
                lat.append((time.perf_counter() - t) * 1000)
            except Exception:
                failed += 1
            finally:
                await s.close()

    await settle(target)
    phase = Phase(target, res.scenario)
    phase.start()
    t0 = time.perf_counter()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(worker(w) for w in range(conc))), timeout)
    elapsed = time.perf_counter() - t0
    phase.stop()
    res.latencies_ms = lat
    res.lost = n - len(lat)
    res.completion_ms = elapsed * 1000
    res.extra["per_s"] = len(lat) / elapsed
    res.extra["per_s_per_process"] = len(lat) / elapsed / max(1, len(target.ws_bases))
    res.cpu_ms_per_op = phase.cpu_per_op(max(1, len(lat)))
    return res


async def scenario_idle(target: Target, sizes: Sizes, timeout: float) -> Result:
    """N waiting guests (token-less knocks into private rooms of ``idle_room_size``).

    Memory per socket is the server processes' RSS growth over the ramp, per guest still
    waiting; only on processes that served nothing else first (``run_scenarios`` restarts the
    ones it started): memory freed by earlier scenarios stays in the process and is reused by
    the new sockets, so it would read low, even negative (-4.21 KiB after admit-all of 1,000)."""
    n, size = sizes.idle_sockets, sizes.idle_room_size
    res = Result("idle", target.name, ops=n)
    res.extra["fd_limit"] = raise_fd_limit()
    fresh = target.served == 0
    # The longest knock_ttl: a ramp of 10,000 knocks takes minutes, and a guest whose knock
    # timed out (ENTRY_TIMEOUT, 4408) is no longer waiting.
    rooms = [await target.room(size_hint=size, knock_ttl=600) for _ in range(-(-n // size))]
    await settle(target)
    rss0 = rss_kib(target.pids)
    phase = Phase(target, res.scenario)
    phase.start()
    t0 = time.perf_counter()
    socks: list[Sock] = []
    waiting = 0
    failures: dict[str, int] = {}
    deadline = time.monotonic() + timeout * 2.5  # 10,000 knocks take a while
    sem = asyncio.Semaphore(100)

    async def one(i: int) -> Sock | None:
        nonlocal waiting
        async with sem:
            if time.monotonic() > deadline:
                failures["skipped: ramp deadline"] = failures.get("skipped: ramp deadline", 0) + 1
                return None
            room = rooms[i // size]
            s = Sock(target, target.url(i, room), tag=i)
            step = "connect"
            try:
                await s.open(read=True, timeout=20)
                step = "join"
                await s.request(type="join", name=f"idle{i}", timeout=20)
            except Exception as exc:
                # Why a guest was lost, counted by step and kind (the report's "failures").
                why = f"{step}: {type(exc).__name__}"
                if isinstance(exc, RuntimeError):
                    why += f" {str(exc)[:80]}"
                failures[why] = failures.get(why, 0) + 1
                await s.close()
                return None
            waiting += 1
            s.on_frame = on_frame
            return s

    def on_frame(s: Sock, frame: dict[str, Any], t: float) -> None:
        if frame.get("type") == "error":  # the server ended this guest's wait
            dropped[s.tag] = f"dropped: {frame.get('error', {}).get('code')}"

    dropped: dict[int, str] = {}
    results = await asyncio.gather(*(one(i) for i in range(n)))
    socks = [s for s in results if s is not None]
    ramp = time.perf_counter() - t0
    await settle(target)  # queue-position fan-out settles before memory is read
    rss1 = rss_kib(target.pids)
    phase.stop()
    # Still waiting at the end: joined, no error since, socket open.
    for s in socks:
        if s.tag not in dropped and (s.ws is None or s.ws.close_code is not None):
            dropped[s.tag] = f"dropped: closed {s.ws.close_code if s.ws else None}"
    for why in dropped.values():
        failures[why] = failures.get(why, 0) + 1
    still = waiting - len(dropped)
    res.extra["still_waiting"] = still
    res.lost = n - still
    res.completion_ms = ramp * 1000
    if rss0 is not None and rss1 is not None and still > 0:
        res.extra["rss_mib"] = rss1 / 1024
        res.extra["rss_before_mib"] = rss0 / 1024
        if fresh:
            res.extra["kib_per_socket"] = (rss1 - rss0) / still
        else:
            res.extra["kib_per_socket"] = None
            res.extra["memory"] = "not measured: the server served other scenarios first"
    res.extra["knocks_per_s"] = waiting / ramp if ramp else None
    if failures:
        res.extra["failures"] = failures
    res.cpu_ms_per_op = phase.cpu_per_op(max(1, waiting))
    await close_all(socks)
    return res


SCENARIO_FUNCS: dict[str, Scenario] = {
    "storm": scenario_storm,
    "admit_all": scenario_admit_all,
    "invite": scenario_invite,
    "connects": scenario_connects,
    "idle": scenario_idle,
}


async def run_scenarios(
    target: Target,
    names: list[str],
    sizes: Sizes,
    *,
    timeout: float,
    log: Callable[[str], None],
) -> list[Result]:
    out = []
    runs: list[tuple[str, Scenario]] = []
    for name in names:
        if name == "knock":  # one run per paced rate
            runs += [(knock_scenario(r), scenario_knock_at(r)) for r in sizes.knock_rates]
        else:
            runs.append((name, SCENARIO_FUNCS[name]))
    for name, func in runs:
        log(f"  {target.name}: {name} ...")
        t = time.perf_counter()
        try:
            if name == "idle" and target.served and await asyncio.to_thread(target.restart):
                # Memory per socket needs a process whose RSS is only its start and the sockets.
                log(f"    restarted {target.name} for the idle run: {', '.join(target.ws_bases)}")
            r = await asyncio.wait_for(func(target, sizes, timeout), timeout * 3)
        except Exception as exc:  # a failed scenario is reported, never hangs the run
            r = Result(name, target.name, error=f"{type(exc).__name__}: {exc}"[:300])
        target.served += 1
        log(f"    done in {time.perf_counter() - t:.1f}s: {r.summary()}")
        out.append(r)
        await asyncio.sleep(0.5)
    return out


# Report -------------------------------------------------------------------------------------


def _baseline_for(by_target: dict[str, dict[str, Any]]) -> tuple[str | None, str | None]:
    single = next((t for t in by_target if t.startswith("relay-1p")), None)
    redis = next((t for t in by_target if t.startswith("relay-") and t.endswith("-redis")), None)
    return single, redis


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each Anteroom row gets its ratio to the bare relays measured in the same run."""
    by_scenario: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_scenario.setdefault(row["scenario"], {})[row["target"]] = row
    for scenario, by_target in by_scenario.items():
        single, redis = _baseline_for(by_target)
        for name, row in by_target.items():
            if name.startswith("relay-"):
                continue
            metric = "kib_per_socket" if scenario == "idle" else "p50_ms"
            if scenario == "connects":
                metric = "per_s"
            for label, base in (("x_relay_1p", single), ("x_relay_redis", redis)):
                b = by_target.get(base or "", {}).get(metric)
                v = row.get(metric)
                if b and v:
                    ratio = (b / v) if scenario == "connects" else (v / b)
                    row[label] = round(ratio, 2)
                else:
                    row[label] = None
            cb = by_target.get(redis or single or "", {}).get("cpu_ms_per_op")
            row["x_cpu"] = (
                round(row["cpu_ms_per_op"] / cb, 2) if cb and row["cpu_ms_per_op"] else None
            )


COLUMNS = [
    ("scenario", "scenario", 9),
    ("target", "target", 26),
    ("ops", "ops", 6),
    ("lost", "lost", 4),
    ("p50_ms", "p50 ms", 8),
    ("p99_ms", "p99 ms", 8),
    ("max_ms", "max ms", 8),
    ("completion_ms", "done ms", 9),
    ("cpu_ms_per_op", "cpu ms/op", 9),
    ("extra", "extra", 22),
    ("x_relay_1p", "x relay1", 8),
    ("x_relay_redis", "x relayR", 8),
    ("x_cpu", "x cpu", 6),
]


def _extra(row: dict[str, Any]) -> str:
    if row.get("error"):
        return "ERROR " + str(row["error"])[:60]
    if row["scenario"] == "idle":
        return f"{row.get('kib_per_socket')} KiB/sock"
    if row["scenario"] == "connects":
        return f"{row.get('per_s')}/s ({row.get('per_s_per_process')}/proc)"
    if "ack_ms" in row:
        return f"ack {row['ack_ms']} ms"
    return ""


def table(rows: list[dict[str, Any]]) -> str:
    lines = [" ".join(h.rjust(w) if i > 1 else h.ljust(w) for i, (_, h, w) in enumerate(COLUMNS))]
    for row in rows:
        cells = []
        for i, (key, _, w) in enumerate(COLUMNS):
            v = _extra(row) if key == "extra" else row.get(key)
            s = "-" if v is None else str(v)
            cells.append(s.rjust(w) if i > 1 and key != "extra" else s.ljust(w))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def plot(results: list[Result], path: str) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: pip install 'anteroom[bench]' to draw --plot"
    names = list(dict.fromkeys(r.scenario for r in results if r.scenario != "idle"))
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 3 * max(1, len(names))), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        for r in results:
            if r.scenario == name and r.latencies_ms:
                xs = sorted(r.latencies_ms)
                ys = [(i + 1) / len(xs) for i in range(len(xs))]
                ax.plot(xs, ys, label=r.target)
        ax.set_title(f"{name}: latency distribution (CDF)")
        ax.set_xlabel("ms")
        ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return f"plot written to {path}"
