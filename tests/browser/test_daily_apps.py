"""Daily apps run unchanged on Anteroom, with only their daily-js <script> tag swapped.

The apps are fixtures under ``tests/browser/daily_apps/`` (Daily's knocking demo from its guide,
and a vanilla call page of the kind Daily's call-object docs describe). They are served from
their own origin, as a real app is: a small HTTP server on another port hands out the files
unchanged except for the one ``<script crossorigin src="https://unpkg.com/@daily-co/daily-js">``
tag, which points at Anteroom's ``daily-compat.js`` instead. Anteroom lists that origin in
``ANTEROOM_ALLOWED_ORIGINS`` (docs/security.md), and its static files carry
``Access-Control-Allow-Origin`` (WhiteNoise), which the ``crossorigin`` tag and the facade's
``import()`` of client.js need. Chromium has the fake camera and microphone (TOOLING.md); the
tests assert what a user sees: video elements showing a picture, the waiting and denied notes.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from playwright.async_api import expect

from tests.browser.conftest import (
    NewPage,
    Server,
    _require_chromium,
    make_server,
    shot,
    watched_pages,
)
from tests.browser.conftest import until as _until

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

APPS = Path(__file__).parent / "daily_apps"
DAILY_TAG = '<script crossorigin src="https://unpkg.com/@daily-co/daily-js"></script>'
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
# Media negotiation on a shared 2-core machine can take more than expect's default 5 s.
expect.set_options(timeout=20_000)


class AppServer:
    """Serves ``daily_apps/`` from its own origin, swapping only the daily-js script tag."""

    def __init__(self) -> None:
        self.anteroom = ""
        self.swapped: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = (APPS / self.path.split("?", 1)[0].lstrip("/")).resolve()
                if APPS not in path.parents or not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                if path.suffix == ".html":
                    text = body.decode()
                    # The app is unchanged but for this one tag.
                    assert text.count(DAILY_TAG) == 1, f"{path.name}: no daily-js tag"
                    ours = DAILY_TAG.replace(
                        "https://unpkg.com/@daily-co/daily-js",
                        f"{outer.anteroom}/static/anteroom/daily-compat.js",
                    )
                    body = text.replace(DAILY_TAG, ours).encode()
                    outer.swapped.append(path.name)
                self.send_response(200)
                self.send_header("Content-Type", TYPES.get(path.suffix, "application/octet-stream"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"{self.origin}/{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def app_server() -> Iterator[AppServer]:
    s = AppServer()
    yield s
    s.close()


@pytest.fixture(scope="module")
def anteroom(tmp_path_factory: pytest.TempPathFactory, app_server: AppServer) -> Iterator[Server]:
    """An Anteroom that lets the app's origin open sockets (tokens only, no cookies)."""
    _require_chromium()
    s = make_server(
        tmp_path_factory.mktemp("daily-apps-db"),
        "daily-apps",
        ANTEROOM_ALLOWED_ORIGINS=app_server.origin,
    )
    app_server.anteroom = s.base
    yield s
    s.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def app_page(media_browser: Any) -> AsyncIterator[NewPage]:
    """``await app_page()``: a watched page in its own browser context (its own person) with
    camera and microphone allowed; the test fails on any script error the app or the facade
    logs. Console lines are echoed (shown when a test fails)."""
    async with watched_pages(
        media_browser,
        timeout=15_000,
        media=True,
        watch_dialogs=False,
        echo_console=True,
        viewport={"width": 900, "height": 700},
    ) as make:
        yield make


# The apps negotiate media through the facade: a little more time than the call page's 20 s.
until = functools.partial(_until, timeout=25)


def widths(page: Any, selector: str) -> Callable[[], Awaitable[Any]]:
    """The picture widths of the <video> elements under ``selector``, once all show one."""

    async def check() -> Any:
        w = await page.evaluate(
            "(s) => [...document.querySelectorAll(s)].map((v) => v.videoWidth)", selector
        )
        return w if w and all(x > 0 for x in w) else None

    return check


async def count(page: Any, selector: str) -> int:
    return int(await page.evaluate("(s) => document.querySelectorAll(s).length", selector))


# The knocking demo --------------------------------------------------------------------------------


async def open_knocking(app_page: Any, app_server: AppServer) -> Any:
    page = await app_page()
    await page.goto(app_server.url("knocking/index.html"))
    assert await page.evaluate("typeof window.DailyIframe.createCallObject") == "function"
    return page


async def knock(page: Any, name: str, url: str) -> None:
    await page.fill("#guestName", name)
    await page.fill("#guestURL", url)
    await page.click("text=Knock to enter call")


async def test_the_knocking_demo_admits_and_denies(app_page, app_server, anteroom, room_name):
    await sync_to_async(anteroom.room)(room_name)
    token = await sync_to_async(anteroom.owner_token)(room_name)
    url = f"{anteroom.base}/r/{room_name}/"

    # The owner fills the owner form and sees their own camera.
    owner = await open_knocking(app_page, app_server)
    await owner.fill("#ownerName", "Dr Owner")
    await owner.fill("#ownerURL", url)
    await owner.fill("#token", token)
    await owner.click("text=Join call")
    await expect(owner.locator("#ownerKnockingButtons")).to_be_visible()
    await until(widths(owner, "#ownerVideo video"), what="the owner's own video")

    # A guest knocks: they are told they wait, the owner sees their name in the list, and the
    # guest sees nothing of the room (no one's video).
    guest = await open_knocking(app_page, app_server)
    await knock(guest, "Gus", url)
    await expect(guest.locator("#guestKnocking")).to_be_visible()
    await expect(guest.locator("#guestKnocking")).to_have_text("You are in the waiting room")
    entry = owner.locator("#knockingList li")
    await expect(entry).to_have_text(re.compile(r"^Gus: \S+$"))
    waiting_id = (await entry.inner_text()).split(": ", 1)[1]
    assert await count(guest, "video") == 0
    await shot(guest, "daily-knocking-guest-waiting")

    # Allow access: the guest enters and sees themself and the owner; the owner sees the guest.
    await owner.click("#allowAccessButton")
    await expect(guest.locator("#guestKnocking")).to_be_hidden()
    await until(widths(guest, "#guestVideo video"), what="the guest's own video")
    await until(widths(guest, "#ownerVideo video"), what="the owner's video at the guest")
    await until(widths(owner, "#guestVideo video"), what="the guest's video at the owner")
    await expect(entry).to_have_count(0)
    # The waiting participant's id is the session_id they have once admitted, as in daily-js.
    tile_id = await owner.evaluate("document.querySelector('#guestVideo video').session_id")
    assert tile_id == waiting_id
    await shot(owner, "daily-knocking-owner-with-guest")

    # A second guest is denied: the demo's rejection note, and no video of anyone.
    other = await open_knocking(app_page, app_server)
    await knock(other, "Ida", url)
    await expect(entry).to_have_text(re.compile(r"^Ida: "))
    await owner.click("#denyAccessButton")
    await expect(other.locator("#guestDenied")).to_be_visible()
    await expect(other.locator("#guestDenied")).to_have_text("Your request to join has been denied")
    await expect(other.locator("#guestKnocking")).to_be_hidden()
    assert await count(other, "#ownerVideo video") == 0
    await expect(entry).to_have_count(0)
    await shot(other, "daily-knocking-guest-denied")

    # The admitted guest leaves: their video goes from the owner's page.
    await guest.click("#leaveButton")
    await until(
        lambda: _none(owner, "#guestVideo video"), what="the guest's video gone at the owner"
    )
    assert set(app_server.swapped) == {"index.html"}


async def _none(page: Any, selector: str) -> bool:
    return await count(page, selector) == 0


# A vanilla call page ------------------------------------------------------------------------------


async def open_call(app_page: Any, app_server: AppServer, url: str, name: str) -> Any:
    page = await app_page()
    await page.goto(app_server.url(f"call/index.html?url={url}"))
    await page.fill("#name", name)
    await page.click("text=Join")
    await expect(page.locator("#status")).to_have_text("Joined")
    return page


REMOTE = ".tile:not([data-id=local])"
REMOTE_AUDIO = f"""() => {{
  const a = document.querySelector('{REMOTE} audio');
  return a && a.srcObject && a.srcObject.getAudioTracks()[0].readyState;
}}"""


def evaluating(page: Any, expression: str, arg: Any = None) -> Callable[[], Awaitable[Any]]:
    async def check() -> Any:
        return await page.evaluate(expression, arg)

    return check


async def test_a_vanilla_daily_call_page(app_page, app_server, anteroom, room_name):
    await sync_to_async(anteroom.room)(room_name, privacy="public", enable_knocking=False)
    url = f"{anteroom.base}/r/{room_name}/"
    ada = await open_call(app_page, app_server, url, "Ada")
    bo = await open_call(app_page, app_server, url, "Bo")

    # Each sees and hears the other: a tile with the name, a picture, a live audio track.
    for page, other in ((ada, "Bo"), (bo, "Ada")):
        await expect(page.locator(f"{REMOTE} .name")).to_have_text(other)
        await until(widths(page, f"{REMOTE} video"), what=f"{other}'s video")
        await until(widths(page, ".tile[data-id=local] video"), what="the self view")
        audio = await until(evaluating(page, REMOTE_AUDIO), what="the remote audio")
        assert audio == "live"
        await expect(page.locator("#count")).to_have_text("2 in the call")

    # Camera off: track-stopped hides Ada's picture on both sides; on again brings it back.
    await ada.click("#camera")
    await expect(bo.locator(REMOTE)).to_have_attribute("data-video", "off")
    await expect(ada.locator(".tile[data-id=local]")).to_have_attribute("data-video", "off")
    assert await ada.evaluate("call.participants().local.tracks.video.state") == "off"
    await ada.click("#camera")
    await expect(bo.locator(REMOTE)).to_have_attribute("data-video", "on")
    await until(widths(bo, f"{REMOTE} video"), what="Ada's video again")

    # Mute: Bo's view of Ada's audio goes off.
    await ada.click("#mic")
    await until(
        lambda: bo.evaluate(
            "() => Object.values(call.participants()).find((p) => !p.local).tracks.audio.state"
            " === 'off'"
        ),
        what="Ada's audio off at Bo",
    )

    # Devices: the picker lists the fake camera; choosing it switches to it and keeps sending.
    await until(lambda: count(ada, "#cameras option"), what="the camera list")
    device = await ada.evaluate("document.querySelector('#cameras option').value")
    await ada.select_option("#cameras", device)
    await until(
        lambda: ada.evaluate(
            "(id) => call.getInputDevices().then((d) => d.camera.deviceId === id)", device
        ),
        what="the chosen camera in use",
    )
    await until(widths(bo, f"{REMOTE} video"), what="Ada's video after the switch")

    # Screen share: Bo sees a second picture in Ada's tile; stopping removes it.
    await ada.click("#screen")
    await expect(ada.locator("#screen")).to_have_text("Stop sharing")
    await until(widths(bo, f"{REMOTE} video.screen"), what="Ada's screen at Bo")
    await ada.click("#screen")
    await expect(ada.locator("#screen")).to_have_text("Share screen")
    await until(lambda: _none(bo, f"{REMOTE} video.screen"), what="the screen gone")

    # Leave: Bo's page says so; Ada's tile for Bo goes and the count drops.
    await bo.click("#leave")
    await expect(bo.locator("#status")).to_have_text("Left")
    await expect(ada.locator(REMOTE)).to_have_count(0)
    await expect(ada.locator("#count")).to_have_text("1 in the call")
    await shot(ada, "daily-call-page-after-leave")
