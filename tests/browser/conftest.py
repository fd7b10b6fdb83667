"""Browser tests: a real Daphne subprocess on a temp SQLite file, driven by Debian's Chromium
through async Playwright (safe in the main pytest process next to pytest-asyncio).

Rooms and tokens are made through the REST API with a key from ``manage.py create_api_key``.
Tests wait on readiness flags the pages set (``html[data-live=on]``, ``html[data-state=…]``)
and on Playwright's ``expect``; they never sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import manage, start_daphne, stop_daphne

SHOTS = ARTIFACTS / "screenshots"
LOGS = ARTIFACTS / "logs"


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        msg = f"{CHROMIUM} missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@dataclass
class Server:
    """One Daphne process on its own database, with an API key for set-up calls."""

    env: dict[str, str]
    log: Path
    key: str = ""
    base: str = ""
    proc: Any = None
    port: int = 0
    made: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.proc, self.base = start_daphne(self.env, self.log, port=self.port)
        self.port = int(self.base.rsplit(":", 1)[1])

    def stop(self, sig: str = "term") -> None:
        if self.proc is not None:
            stop_daphne(self.proc, sig)
            self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port and database (a deploy or a crash)."""
        self.stop()
        self.start()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            f"{self.base}/api/v1{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()!r}") from exc

    def room(self, name: str, *, privacy: str = "private", **props: Any) -> str:
        props.setdefault("enable_knocking", True)
        self.api("POST", "/rooms", {"name": name, "privacy": privacy, "properties": props})
        return name

    def token(self, room: str | None, **props: Any) -> str:
        if room is not None:
            props["room_name"] = room
        return str(self.api("POST", "/meeting-tokens", {"properties": props})["token"])

    def owner_token(self, room: str, name: str = "Dr Owner", sub: str = "owner-1") -> str:
        return self.token(room, is_owner=True, user_name=name, user_id=sub)


def make_server(tmp: Path, name: str, **env_extra: str) -> Server:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'anteroom.sqlite3'}",
        "ANTEROOM_SIGNING_KEY": "browser-tests-" + secrets.token_urlsafe(32),
        # Every browser here connects from 127.0.0.1: lift the per-address limits.
        "ANTEROOM_ADDRESS_KNOCK_LIMIT": "1000/300",
        "ANTEROOM_MAX_SOCKETS_PER_ADDRESS": "1000",
        "ANTEROOM_SWEEP_INTERVAL": "0.5",
        "LOG_LEVEL": "WARNING",
        **env_extra,
    }
    manage("migrate", "--noinput", "-v0", env=env)
    key = manage("create_api_key", f"browser-{name}", env=env).strip().splitlines()[-1]
    LOGS.mkdir(parents=True, exist_ok=True)
    server = Server(env=env, log=LOGS / f"daphne-{name}.log", key=key)
    server.start()
    return server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared server (tests use their own rooms, so they never see each other's knocks)."""
    _require_chromium()
    s = make_server(tmp_path_factory.mktemp("browser-db"), "shared")
    yield s
    s.stop()


@pytest.fixture
def room_name(request: pytest.FixtureRequest) -> str:
    """A fresh room name per test, derived from its name (1-64 of [A-Za-z0-9_-])."""
    base = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name.removeprefix("test_"))[:24]
    return f"{base}-{secrets.token_hex(3)}"


# Chromium with the fake camera and microphone (TOOLING.md): calls, device checks, Daily apps.
MEDIA_ARGS = [
    *CHROMIUM_ARGS,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    # getDisplayMedia picks the whole screen without a picker (the fake UI accepts it).
    "--auto-select-desktop-capture-source=Entire screen",
]


@contextlib.asynccontextmanager
async def chromium(args: list[str]) -> AsyncIterator[Any]:
    """One Chromium launched with ``args``, closed on exit."""
    _require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        await b.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    async with chromium(CHROMIUM_ARGS) as b:
        yield b


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def media_browser() -> AsyncIterator[Any]:
    """A Chromium with fake media devices (``MEDIA_ARGS``), one per test module."""
    async with chromium(MEDIA_ARGS) as b:
        yield b


@dataclass
class Watch:
    """What a page did that a test should fail on: script errors, CSP refusals, dialogs."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    # Substrings of console errors a test expects (e.g. refused sockets while a server restarts).
    expected: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [e for e in self.errors if not any(x in e for x in self.expected)]


NewPage = Callable[..., Awaitable[Any]]


@contextlib.asynccontextmanager
async def watched_pages(
    browser: Any,
    *,
    timeout: float = 10_000,
    media: bool = False,
    init_script: str | None = None,
    watch_dialogs: bool = True,
    echo_console: bool = False,
    **context_defaults: Any,
) -> AsyncIterator[NewPage]:
    """``await make(**context_options)``: a page in a fresh context of ``browser`` (its own
    cookies: a different person, as far as the server can tell), made with ``context_defaults``
    (e.g. ``viewport``) overridden by ``context_options``. ``media`` grants camera and
    microphone; ``init_script`` runs before each page's own scripts; ``echo_console`` prints
    every console line (pytest shows them when a test fails).

    ``page.watch`` collects script errors and CSP violations (console errors other than failed
    loads, and uncaught exceptions), and with ``watch_dialogs`` the dialogs, which it dismisses.
    On exit every context is closed, and any of those fails the test."""
    contexts: list[Any] = []
    watches: list[Watch] = []

    async def make(**options: Any) -> Any:
        ctx = await browser.new_context(**{**context_defaults, **options})
        if media:
            await ctx.grant_permissions(["camera", "microphone"])
        ctx.set_default_timeout(timeout)
        contexts.append(ctx)
        page = await ctx.new_page()
        if init_script is not None:
            await page.add_init_script(init_script)
        watch = Watch()
        watches.append(watch)

        def on_console(msg: Any) -> None:
            if msg.type == "error" and "Failed to load resource" not in msg.text:
                watch.errors.append(msg.text)

        async def on_dialog(dialog: Any) -> None:
            watch.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("console", on_console)
        page.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc}"))
        if watch_dialogs:
            page.on("dialog", on_dialog)
        if echo_console:
            page.on("console", lambda m: print("CONSOLE", m.type, m.text[:300]))
        page.watch = watch
        return page

    yield make
    for ctx in contexts:
        await ctx.close()
    problems = [e for w in watches for e in w.problems()]
    assert not problems, f"browser errors: {problems}"
    assert not [d for w in watches for d in w.dialogs], "a dialog opened"


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser: Any) -> AsyncIterator[NewPage]:
    """``await new_page(**context_options)``: a watched page (:func:`watched_pages`) in a fresh
    context of the shared browser, 1100x800 unless ``viewport`` says otherwise."""
    async with watched_pages(browser, viewport={"width": 1100, "height": 800}) as make:
        yield make


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 20, what: str = "") -> Any:
    """Poll ``check`` every 0.2 s until it returns something truthy (returned), or fail after
    ``timeout`` seconds with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")


async def shot(page: Any, name: str, full_page: bool = True) -> Path:
    """Save a screenshot as a test artifact (artifacts/screenshots/<name>.png)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking set-up call (REST, manage.py) off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


class Blip:
    """A TCP relay in front of the server whose connections a test can cut (a network blip:
    Chromium's offline emulation leaves open WebSockets alone) and hold down for a while."""

    def __init__(self, target: str) -> None:
        self.target_port = int(target.rsplit(":", 1)[1])
        self.links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.down = False
        self.base = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> Blip:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.links.append((writer, up_writer))
        for r, w in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(r, w))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()

    def cut(self, *, stay_down: bool) -> None:
        """Drop every connection at once (no close frames); refuse new ones if ``stay_down``."""
        self.down = stay_down
        for a, b in self.links:
            a.transport.abort()
            b.transport.abort()
        self.links.clear()

    def restore(self) -> None:
        self.down = False

    async def close(self) -> None:
        self.cut(stay_down=True)
        if self._server is not None:
            self._server.close()
        for task in list(self.tasks):
            task.cancel()
