"""Real media through a real Janus: the browser engine (static/anteroom/media-janus.js) in
Chromium with fake devices, the JanusBackend enforcing permissions inside Janus.

"Flat" means a receiver's inbound-rtp bytes from that sender did not grow over a window of
1.5 s, measured after the change took effect; "flowing" means they did.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from lobby.media.janus import JanusBackend

from .conftest import Janus, session_with, start_janus
from .test_backend import config_for

pytestmark = [pytest.mark.janus, pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

FULL = {"audio": True, "video": True, "screen": False, "receive": True}
MUTED = {"audio": False, "video": True, "screen": False, "receive": True}
NO_MEDIA = {"audio": False, "video": False, "screen": False, "receive": False}


async def until(check, timeout: float = 15.0, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s (last: {value!r})")
        await asyncio.sleep(step)


async def inbound(page, kind: str, sender: str) -> dict[str, int]:
    return await page.evaluate("([k, s]) => inbound(k, s)", [kind, sender])


async def growth(page, kind: str, sender: str, field: str, window: float = 1.5) -> int:
    before = (await inbound(page, kind, sender))[field]
    await asyncio.sleep(window)
    return (await inbound(page, kind, sender))[field] - before


async def open_peer(media_page, harness: str, backend: JanusBackend, pid: str, room: str):
    page = await media_page()
    await page.goto(harness)
    await page.wait_for_function("typeof window.start === 'function'")
    sfu = await asyncio.to_thread(backend.join_info, pid, room)
    await page.evaluate("(sfu) => start(sfu)", sfu)
    return page


async def apply(backend: JanusBackend, room: str, perms: dict[str, dict[str, bool]]) -> None:
    await asyncio.to_thread(backend.apply, room, perms)


@pytest.fixture
def backend(janus: Janus):
    b = JanusBackend(
        config_for(janus, reconcile_interval=0.3),
        on_recovered=lambda rooms: None,
        permissions_source="applied",
    )
    yield b
    b.stop()


async def test_server_mute_silences_a_client_that_puts_its_microphone_back(
    janus: Janus, backend: JanusBackend, media_page, harness: str
):
    room = "mute-room"
    await apply(backend, room, {"alice": FULL, "bob": FULL})
    alice = await open_peer(media_page, harness, backend, "alice", room)
    bob = await open_peer(media_page, harness, backend, "bob", room)
    # both receive the other: frames decode, audio bytes grow
    for page, other in ((bob, "alice"), (alice, "bob")):
        await until(lambda p=page, o=other: _decoding(p, o))
    assert await growth(bob, "audio", "alice", "bytesReceived") > 0

    # "Mute everyone": the server moderates alice's audio inside Janus
    t0 = time.monotonic()
    await apply(backend, room, {"alice": MUTED, "bob": FULL})
    await until(lambda: _flat(bob, "audio", "alice", 0.5), timeout=5, step=0)
    mute_to_silence = time.monotonic() - t0
    # alice's page is told (as media.js does) and then "cheats": it re-enables its sender
    await alice.evaluate("engine.setPermissions({audio: false})")
    assert await alice.evaluate("cheat()") is True
    sent_before = await alice.evaluate("sent('audio')")
    assert await growth(bob, "audio", "alice", "bytesReceived") == 0  # still not heard
    sent_after = await alice.evaluate("sent('audio')")
    assert sent_after > sent_before  # ... although alice's browser does send audio
    assert await growth(bob, "video", "alice", "framesDecoded") > 0  # video goes on
    assert await growth(alice, "audio", "bob", "bytesReceived") > 0  # bob is not muted

    # unmute: heard again
    await apply(backend, room, {"alice": FULL, "bob": FULL})
    await until(lambda: _flowing(bob, "audio", "alice"), timeout=5)
    print(f"\nmute -> silence at the receiver: {mute_to_silence * 1000:.0f} ms")


async def test_revoked_participant_stops_receiving_and_cannot_come_back(
    janus: Janus, backend: JanusBackend, media_page, harness: str
):
    room = "revoke-room"
    await apply(backend, room, {"alice": FULL, "bob": FULL})
    alice = await open_peer(media_page, harness, backend, "alice", room)
    bob = await open_peer(media_page, harness, backend, "bob", room)
    await until(lambda: _decoding(bob, "alice"))
    await until(lambda: _decoding(alice, "bob"))
    token = backend.token("bob", room)

    await asyncio.to_thread(backend.revoke, "bob", room)
    await apply(backend, room, {"alice": FULL})
    # bob's tiles go: its subscriptions are closed, and its engine's retries are refused
    await until(lambda: bob.evaluate("engine.feeds.size === 0"))
    await until(lambda: bob.evaluate("engine.state === 'unavailable'"))
    with pytest.raises(PermissionError, match="Unauthorized"):
        session_with(janus, token)
    handles = await asyncio.to_thread(backend.client.handles)
    assert not [h for h in handles if h.get("token") == token]
    # alice no longer receives bob
    await until(lambda: alice.evaluate("engine.feeds.size === 0"))


async def test_pause_closes_media_and_resume_restores_it(
    janus: Janus, backend: JanusBackend, media_page, harness: str
):
    room = "pause-room"
    await apply(backend, room, {"alice": FULL, "bob": FULL})
    alice = await open_peer(media_page, harness, backend, "alice", room)
    bob = await open_peer(media_page, harness, backend, "bob", room)
    await until(lambda: _decoding(bob, "alice"))
    # pause: bob (not a moderator) neither sends nor receives; alice (moderator) keeps hers
    await apply(backend, room, {"alice": FULL, "bob": NO_MEDIA})
    await until(lambda: alice.evaluate("engine.feeds.size === 0"))
    await until(lambda: bob.evaluate("engine.feeds.size === 0"))
    # resume: bob's engine, retrying with the same credential, is let back in
    await apply(backend, room, {"alice": FULL, "bob": FULL})
    await until(lambda: _decoding(bob, "alice"), timeout=20)
    await until(lambda: _decoding(alice, "bob"), timeout=20)


async def test_janus_killed_and_restarted_mid_call_recovers(media_page, harness: str, tmp_path):
    j = start_janus(tmp_path, "janus-kill")
    b = JanusBackend(
        config_for(j, reconcile_interval=0.3),
        on_recovered=lambda rooms: None,
        permissions_source="applied",
    )
    b.start()
    room = "restart-room"
    try:
        await apply(b, room, {"alice": FULL, "bob": FULL})
        alice = await open_peer(media_page, harness, b, "alice", room)
        bob = await open_peer(media_page, harness, b, "bob", room)
        await until(lambda: _decoding(bob, "alice"))
        await asyncio.to_thread(j.stop, 9)  # SIGKILL
        assert b.ready() == (False, "media server (janus) unreachable")
        await until(lambda: bob.evaluate("engine.state === 'unavailable'"))
        t0 = time.monotonic()
        await asyncio.to_thread(j.start)
        await until(lambda: _decoding(bob, "alice", fresh=True), timeout=30)
        await until(lambda: _decoding(alice, "bob", fresh=True), timeout=30)
        print(f"\njanus back -> frames again: {time.monotonic() - t0:.1f} s")
        assert b.ready() == (True, "ok")
    finally:
        b.stop()
        j.stop()


async def _decoding(page, sender: str, fresh: bool = False) -> bool:
    """Frames from ``sender`` decode now (``fresh``: on a subscription made after a reconnect,
    i.e. the engine connected more than once)."""
    if fresh and await page.evaluate("engine.stats.connects") < 2:
        return False
    return await growth(page, "video", sender, "framesDecoded", 0.5) > 0


async def _flat(page, kind: str, sender: str, window: float) -> bool:
    return await growth(page, kind, sender, "bytesReceived", window) == 0


async def _flowing(page, kind: str, sender: str) -> bool:
    return await growth(page, kind, sender, "bytesReceived", 0.5) > 0
