"""The calls of the pages (media.js, the guest page and the dashboard) with ANTEROOM_MEDIA=janus:
the mesh issue's acceptance scenario run unchanged through Janus, and the difference a media
server makes: a page that ignores "Mute everyone" and puts its microphone back is heard in a
mesh, and is not heard through Janus.

Everything runs inside the network namespace (scripts/netns-run): Daphne on 127.0.0.1, Janus on
the veth end, one Chromium with fake devices.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import expect

from tests.browser.conftest import (
    Server,
    make_server,
    media_browser,  # noqa: F401 - fixture
    until,
)
from tests.browser.test_media_call import (
    knock,
    me,
    media_page,  # noqa: F401 - fixture
    open_guest,
    stats,
)
from tests.browser.test_media_call import (
    test_three_people_call_room_controls_and_breakouts as mesh_scenario,
)

from .conftest import Janus, start_janus

pytestmark = [
    pytest.mark.janus,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="session"),
]


@pytest.fixture(scope="module")
def janus_call(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Janus]]:
    j = start_janus(tmp_path_factory.mktemp("janus-call"), "janus-call")
    try:
        s = make_server(
            tmp_path_factory.mktemp("janus-call-db"),
            "janus-call",
            **j.env(),
            ANTEROOM_JANUS_RECONCILE_INTERVAL="0.5",
        )
        yield s, j
        s.stop()
    finally:
        j.stop()


@pytest.fixture(scope="module")
def mesh_call(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = make_server(tmp_path_factory.mktemp("mesh-call-db"), "mesh-call", ANTEROOM_MEDIA="mesh")
    yield s
    s.stop()


async def test_the_mesh_acceptance_scenario_passes_through_janus(
    media_page,  # noqa: F811
    janus_call,
    room_name,
):
    server, _ = janus_call
    await mesh_scenario(media_page, server, room_name)


# What a modified page does to ignore "Mute everyone": put its microphone back on its senders.
CHEAT = """() => {
  const call = window.anteroomCall, track = call.local.audio, e = call.engine;
  const senders = e.publisher && e.publisher.senders ? [e.publisher.senders.audio]
    : [...e.peers.values()].map((p) => p.senders && p.senders.audio);
  const put = senders.filter(Boolean).map((s) => s.replaceTrack(track));
  return Promise.all(put).then(() => senders.length);
}"""


async def _heard_after_cheating(media_page, server: Server, room: str) -> tuple[int, int]:  # noqa: F811
    """Host + Ann in a call; "Mute everyone"; Ann's page cheats. Returns (audio bytes from Ann
    at the host over 1.5 s after the cheat, bytes Ann's page sent meanwhile)."""
    await sync_to_async(server.room)(room)
    owner = await sync_to_async(server.owner_token)(room)
    mod = await media_page()
    await mod.goto(f"{server.base}/r/{room}/dashboard/?t={owner}")
    await expect(mod.locator("html")).to_have_attribute("data-live", "on")
    await mod.get_by_role("button", name="Join call").click()
    await expect(mod.locator("html")).to_have_attribute("data-call", "on")
    ann = await open_guest(media_page, server, room)
    await knock(ann, "Ann")
    await mod.get_by_role("button", name="Admit Ann").click()
    await expect(ann.locator("html")).to_have_attribute("data-call", "on")
    ann_id = await me(ann)

    async def audio_from_ann() -> int:
        return int((await stats(mod)).get(ann_id, {}).get("audio", 0))

    first = await until(audio_from_ann, 30, "audio from Ann")
    await until(lambda: _grew(audio_from_ann, first), 15, "Ann heard")

    await mod.get_by_role("button", name="Mute everyone").click()
    await expect(ann.locator("#call-mic")).to_be_disabled()
    await asyncio.sleep(1.5)  # the mute took effect (the mesh test's one-second claim)
    assert await ann.evaluate(CHEAT) >= 1
    sent_before = await ann.evaluate(SENT)
    a = await audio_from_ann()
    await asyncio.sleep(1.5)
    heard = await audio_from_ann() - a
    sent = await ann.evaluate(SENT) - sent_before
    return heard, sent


SENT = """async () => {
  let n = 0;
  for (const e of Object.values(await window.anteroomCall.getStats())) {
    for (const r of Object.values(e.outbound || {})) {
      if (r.kind === 'audio') n = Math.max(n, r.bytes || 0);
    }
  }
  return n;
}"""


async def _grew(read, first: int) -> bool:
    return await read() > first


async def test_a_page_that_ignores_mute_is_heard_in_a_mesh_and_not_through_janus(
    media_page,  # noqa: F811
    janus_call,
    mesh_call,
    room_name,
):
    heard_mesh, sent_mesh = await _heard_after_cheating(media_page, mesh_call, room_name + "-m")
    server, _ = janus_call
    heard_sfu, sent_sfu = await _heard_after_cheating(media_page, server, room_name + "-j")
    print(
        f"\nafter cheating: mesh heard {heard_mesh} B (sent {sent_mesh} B); "
        f"janus heard {heard_sfu} B (sent {sent_sfu} B)"
    )
    assert sent_mesh > 0 and sent_sfu > 0  # both pages really send audio again
    assert heard_mesh > 0  # the mesh only has the sender's word
    assert heard_sfu == 0  # Janus drops it: the server moderated that stream


async def test_admit_to_first_frame_through_janus(media_page, janus_call, room_name):  # noqa: F811
    """Measured (printed, not asserted): the host clicks Admit -> the guest's page decodes the
    host's video, 5 runs."""
    server, _ = janus_call
    times: list[float] = []
    for n in range(5):
        room = f"{room_name}-{n}"
        await sync_to_async(server.room)(room)
        owner = await sync_to_async(server.owner_token)(room)
        mod = await media_page()
        await mod.goto(f"{server.base}/r/{room}/dashboard/?t={owner}")
        await expect(mod.locator("html")).to_have_attribute("data-live", "on")
        await mod.get_by_role("button", name="Join call").click()
        await expect(mod.locator("html")).to_have_attribute("data-call", "on")
        guest = await open_guest(media_page, server, room)
        await knock(guest, "Gus")
        mod_id = await me(mod)
        t0 = time.monotonic()
        await mod.get_by_role("button", name="Admit Gus").click()

        async def decoded(g: Any = guest, m: str = mod_id) -> bool:
            try:
                return int((await stats(g)).get(m, {}).get("frames", 0)) > 0
            except Exception:
                return False

        await until(decoded, 30, "first frame")
        times.append(time.monotonic() - t0)
        await mod.close()
        await guest.close()
    times.sort()
    print(
        f"\nadmit -> first decoded frame through Janus: p50 {times[len(times) // 2] * 1000:.0f} ms "
        f"(runs: {', '.join(f'{t * 1000:.0f}' for t in times)} ms)"
    )


async def test_janus_killed_mid_call_pages_recover_and_no_knock_is_lost(
    media_page,  # noqa: F811
    tmp_path,
    room_name,
):
    """Host and Ann in a call through Janus; Janus is killed: /readyz says so, Bob's knock
    reaches the host and is admitted meanwhile; Janus comes back empty: the call resumes (frames
    decode again both ways, Bob included) without anyone reloading."""
    j = start_janus(tmp_path / "janus", "janus-call-kill")
    opened: list[Any] = []
    (tmp_path / "db").mkdir()
    try:
        server = make_server(tmp_path / "db", "janus-call-kill", **j.env())
    except BaseException:
        j.stop()
        raise
    try:
        await sync_to_async(server.room)(room_name)
        owner = await sync_to_async(server.owner_token)(room_name)
        mod = await media_page()
        opened.append(mod)
        await mod.goto(f"{server.base}/r/{room_name}/dashboard/?t={owner}")
        await expect(mod.locator("html")).to_have_attribute("data-live", "on")
        await mod.get_by_role("button", name="Join call").click()
        await expect(mod.locator("html")).to_have_attribute("data-call", "on")
        ann = await open_guest(media_page, server, room_name)
        opened.append(ann)
        await knock(ann, "Ann")
        await mod.get_by_role("button", name="Admit Ann").click()
        await expect(ann.locator("html")).to_have_attribute("data-call", "on")
        ids = {"mod": await me(mod), "ann": await me(ann)}
        await until(lambda: _frames_grow(mod, ids["ann"]), 30, "host decodes Ann")

        await sync_to_async(j.stop)(9)  # SIGKILL
        status, body = await sync_to_async(_readyz)(server)
        assert status == 503 and body["checks"]["media"] == "down", body
        assert body["media"]["detail"] == "media server (janus) unreachable"
        bob = await open_guest(media_page, server, room_name)
        opened.append(bob)
        await knock(bob, "Bob")  # the lobby works without Janus
        await mod.get_by_role("button", name="Admit Bob").click()
        await expect(bob.locator("html")).to_have_attribute("data-call", "on")
        ids["bob"] = await me(bob)

        await sync_to_async(j.start)()  # same address, nothing remembered
        pages = {"mod": mod, "ann": ann, "bob": bob}
        for who, page in pages.items():
            for other in pages:
                if other != who:
                    await until(_growing(page, ids[other]), 40, f"{who} gets {other}")
        status, body = await sync_to_async(_readyz)(server)
        assert status == 200, body
    finally:
        for page in opened:
            # refused fetches while Janus was down; the socket once this server stops
            page.watch.expected += ["/janus", "Failed to fetch", "ERR_CONNECTION_REFUSED"]
        server.stop()
        j.stop()


def _readyz(server: Server) -> tuple[int, dict[str, Any]]:
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(server.base + "/readyz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _growing(page: Any, sender: str) -> Any:
    async def check() -> bool:
        return await _frames_grow(page, sender)

    return check


async def _frames_grow(page, sender: str) -> bool:
    a = int((await stats(page)).get(sender, {}).get("frames", 0))
    await asyncio.sleep(0.5)
    return int((await stats(page)).get(sender, {}).get("frames", 0)) > a
