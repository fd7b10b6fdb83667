"""A real Janus (Debian's 1.1.2) for the ``janus`` tests, inside the private network namespace.

Janus gathers no ICE candidates on loopback, so these tests run inside ``scripts/netns-run``
(a namespace with a veth pair, both ends inside): Janus's media binds to ``v0``
(``$ANTEROOM_NETNS_JANUS_IP``), its HTTP API listens there too, its admin API on 127.0.0.1.
``scripts/test`` runs them as their own step: ``scripts/netns-run pytest -m janus tests/janus``.
Outside the namespace they skip (locally) or fail (``CI=1``): never a silent pass.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.browser.conftest import room_name  # noqa: F401 - fixture for the page tests
from tests.support import ARTIFACTS, ROOT

# Every test module here sets ``pytestmark = pytest.mark.janus``.

LOGS = ARTIFACTS / "logs"


def _render_module() -> Any:
    spec = importlib.util.spec_from_file_location("janus_render", ROOT / "scripts/janus/render.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def require_janus() -> None:
    """Skip locally, fail on CI, when Janus or the namespace is missing."""
    problem = ""
    if not shutil.which("janus"):
        problem = "janus is not installed (apt-get install -y janus)"
    elif os.environ.get("ANTEROOM_NETNS") != "1":
        problem = (
            "janus tests run inside the network namespace: "
            "scripts/netns-run pytest -m janus tests/janus"
        )
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def post(url: str, body: dict[str, Any], timeout: float = 5) -> dict[str, Any]:
    """A hand-made Janus request (what a hand-written client would send)."""
    req = urllib.request.Request(
        url,
        data=json.dumps({"transaction": secrets.token_hex(6), **body}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return dict(json.loads(resp.read()))


@dataclass
class Janus:
    """One Janus process with freshly generated secrets, on random ports."""

    workdir: Path
    name: str = "janus"
    ip: str = field(default_factory=lambda: os.environ.get("ANTEROOM_NETNS_JANUS_IP", "10.200.0.1"))
    http_port: int = 0
    admin_port: int = 0
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    room_admin_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.http_port}/janus"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/admin"

    def env(self) -> dict[str, str]:
        """The Anteroom settings for this Janus (process environment)."""
        return {
            "ANTEROOM_MEDIA": "janus",
            "ANTEROOM_JANUS_URL": self.url,
            "ANTEROOM_JANUS_ADMIN_URL": self.admin_url,
            "ANTEROOM_JANUS_API_SECRET": self.api_secret,
            "ANTEROOM_JANUS_ADMIN_SECRET": self.admin_secret,
            "ANTEROOM_JANUS_ROOM_ADMIN_KEY": self.room_admin_key,
        }

    def start(self) -> None:
        if not self.http_port:
            self.http_port = free_port(self.ip)
            self.admin_port = free_port("127.0.0.1")
        conf = _render_module().render(
            self.workdir / "conf",
            http_port=self.http_port,
            http_ip=self.ip,
            admin_port=self.admin_port,
            admin_ip="127.0.0.1",
            api_secret=self.api_secret,
            admin_secret=self.admin_secret,
            room_admin_key=self.room_admin_key,
            ice_enforce_list="v0",
            rtp_port_range="30000-39999",
        )
        LOGS.mkdir(parents=True, exist_ok=True)
        with open(LOGS / f"{self.name}.log", "ab") as out:
            self.proc = subprocess.Popen(
                _render_module().command(conf), stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"janus exited with {self.proc.returncode}; see {LOGS}")
            try:
                post(self.admin_url, {"janus": "ping", "admin_secret": self.admin_secret}, 1)
                post(self.url, {"janus": "info"}, 1)
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("janus did not answer within 20 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop(signal.SIGKILL)
        self.start()

    # hand-made requests ---------------------------------------------------------------------

    def admin(self, body: dict[str, Any], path: str = "") -> dict[str, Any]:
        return post(self.admin_url + path, {**body, "admin_secret": self.admin_secret})

    def rooms(self) -> list[int]:
        """Room ids Janus holds (listed with the room admin key: private rooms included)."""
        s = post(self.url, {"janus": "create", "apisecret": self.api_secret})["data"]["id"]
        try:
            h = post(
                f"{self.url}/{s}",
                {
                    "janus": "attach",
                    "plugin": "janus.plugin.videoroom",
                    "apisecret": self.api_secret,
                },
            )["data"]["id"]
            answer = post(
                f"{self.url}/{s}/{h}",
                {
                    "janus": "message",
                    "apisecret": self.api_secret,
                    "body": {"request": "list", "admin_key": self.room_admin_key},
                },
            )
            return [r["room"] for r in answer["plugindata"]["data"]["list"]]
        finally:
            post(f"{self.url}/{s}", {"janus": "destroy", "apisecret": self.api_secret})


def session_with(j: Janus, token: str) -> int:
    """A hand-written client: open a Janus session with ``token`` (PermissionError if refused)."""
    answer = post(j.url, {"janus": "create", "token": token})
    if answer["janus"] != "success":
        raise PermissionError(answer["error"])
    return int(answer["data"]["id"])


def start_janus(tmp: Path, name: str = "janus") -> Janus:
    require_janus()
    j = Janus(workdir=tmp, name=name)
    j.start()
    return j


@pytest.fixture(scope="session")
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Janus]:
    """The shared Janus of the ``janus`` tests (tests use their own rooms)."""
    j = start_janus(tmp_path_factory.mktemp("janus"), "janus-shared")
    yield j
    j.stop()


# Chromium in the namespace -----------------------------------------------------------------

MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A static server for tests/janus/harness.html and /static/ (the engine under test)."""
    root = tmp_path_factory.mktemp("harness")
    (root / "static").symlink_to(ROOT / "static")
    (root / "harness.html").symlink_to(Path(__file__).parent / "harness.html")
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/harness.html"
    server.shutdown()
    server.server_close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def media_browser() -> AsyncIterator[Any]:
    """One Chromium with fake camera and microphone (each test uses its own contexts)."""
    require_janus()
    from playwright.async_api import async_playwright

    from tests.support import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *MEDIA_ARGS])
        yield b
        await b.close()


@pytest_asyncio.fixture(loop_scope="session")
async def media_page(media_browser: Any) -> AsyncIterator[Any]:
    """``await media_page()``: a page in its own context with camera and microphone granted."""
    contexts: list[Any] = []
    errors: list[str] = []

    async def make() -> Any:
        ctx = await media_browser.new_context(permissions=["camera", "microphone"])
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        page = await ctx.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for ctx in contexts:
        await ctx.close()
    assert not errors, f"page errors: {errors}"
