"""Calls over real sockets: ``joined.media``, the ``signal`` relay and ``media-state``.

What each socket would see: a signal reaches exactly its addressee when both are admitted
participants of the same media room, and nobody otherwise — not a waiting guest, not someone in
another room or breakout room, not after leaving; room controls and breakout moves change what
each participant may send and whom it talks to.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from tests.factories import make_room, make_token

pytestmark = pytest.mark.django_db(transaction=True)

OFFER = {"gen": 1, "description": {"type": "offer", "sdp": "v=0\r\n"}}
ANSWER = {"gen": 5, "to": 1, "description": {"type": "answer", "sdp": "v=0\r\n"}}
CANDIDATES = {
    "gen": 1,
    "to": 5,
    "candidates": [{"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}],
}


async def member(clients: Any, room: str, sub: str, **claims: Any) -> Any:
    c = await clients(room)
    token = await database_sync_to_async(make_token)(room=room, sub=sub, name=sub.upper(), **claims)
    assert (await c.request("join", rid="j", token=token))["ok"]
    c.joined = await c.expect("joined")
    return c


async def quiet(*cs: Any) -> None:
    """Read everything pending (media-state frames after a change), keep it in ``seen``."""
    for c in cs:
        while not await c.nothing(0.15):
            await c.recv()
        c.unread.clear()


def signals(c: Any) -> list[dict[str, Any]]:
    return [f for f in c.seen if f["type"] == "signal"]


def last_state(c: Any) -> dict[str, Any]:
    states = [f for f in c.seen if f["type"] == "media-state"]
    assert states, [f["type"] for f in c.seen]
    return max(states, key=lambda f: f["seq"])


async def call(clients: Any, *, room: str = "clinic", **room_fields: Any) -> tuple[Any, Any, Any]:
    await database_sync_to_async(make_room)(room, **room_fields)
    mod = await member(clients, room, "mod", owner=True)
    a = await member(clients, room, "a")
    b = await member(clients, room, "b")
    await quiet(mod, a, b)
    return mod, a, b


async def test_joined_carries_media_and_a_signal_reaches_its_addressee_only(clients):
    mod, a, b = await call(clients)
    media = b.joined["media"]
    assert media["mode"] == "mesh"
    assert media["room"] == media["room"] and media["max_publishers"] == 6
    assert media["permissions"] == {"audio": True, "video": True, "screen": True, "receive": True}
    assert media["publisher"] is True
    assert sorted(media["peers"]) == ["a", "mod"]
    assert media["ice_servers"] == [] and media["sfu"] == {}
    # The earlier arrivals heard of b through media-state.
    assert "b" in last_state(a)["peers"] and "b" in last_state(mod)["peers"]

    ack = await a.request("signal", rid=7, to="b", data=OFFER)
    assert ack["ok"], ack
    got = await b.expect("signal")
    assert got == {"type": "signal", "from": "a", "data": OFFER}
    await quiet(mod)
    assert signals(mod) == []  # nobody else hears it

    ack = await b.request("signal", rid=8, to="a", data=ANSWER)
    assert ack["ok"]
    assert (await a.expect("signal"))["data"] == ANSWER
    assert (await a.request("signal", rid=9, to="b", data=CANDIDATES))["ok"]
    assert (await b.expect("signal"))["data"] == CANDIDATES


async def test_a_waiting_guest_neither_sends_nor_receives_signals(clients):
    mod, a, _ = await call(clients, privacy="private", enable_knocking=True)
    guest = await clients("clinic")
    await guest.send(type="join", name="Pat")
    waiting = await guest.expect("waiting")
    request = await mod.expect("entry-requested")
    pid = request["request"]["participant_id"]

    # The waiting guest cannot signal anyone …
    ack = await guest.request("signal", rid=1, to="a", data=OFFER)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    ack = await guest.request("media-update", rid=2, audio=True, video=True)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    # … and nobody can signal it, although its participant id is known to moderators.
    ack = await mod.request("signal", rid=3, to=pid, data=OFFER)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    ack = await a.request("signal", rid=4, to=pid, data=OFFER)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    await quiet(guest, a)
    assert signals(guest) == [] and signals(a) == []
    assert not [f for f in guest.seen if f["type"] == "media-state"]
    assert waiting["request"]["id"]

    # Admitted, it is in the call: its joined frame names its peers and signals flow.
    assert (await mod.request("admit", rid=5, request_id=request["request"]["id"]))["ok"]
    joined = await guest.expect("joined")
    assert sorted(joined["media"]["peers"]) == ["a", "b", "mod"]
    assert (await a.request("signal", rid=6, to=pid, data=OFFER))["ok"]
    assert (await guest.expect("signal"))["from"] == "a"


async def test_an_admitted_guest_hears_a_signal_sent_the_moment_it_is_joined(clients, monkeypatch):
    """``joined`` goes out only once the socket hears its media group: a peer that answers the
    ``joined`` at once is not lost, however slow the layer's ``group_add`` is (a busy Redis)."""
    from channels.layers import get_channel_layer

    mod, a, _ = await call(clients, privacy="private", enable_knocking=True)
    guest = await clients("clinic")
    await guest.send(type="join", name="Pat")
    await guest.expect("waiting")
    request = await mod.expect("entry-requested")
    pid = request["request"]["participant_id"]

    layer = get_channel_layer()
    assert layer is not None
    group_add = layer.group_add

    async def slow_group_add(group: str, channel: str) -> None:
        await asyncio.sleep(0.3)
        await group_add(group, channel)

    monkeypatch.setattr(layer, "group_add", slow_group_add)
    assert (await mod.request("admit", rid=1, request_id=request["request"]["id"]))["ok"]
    await guest.expect("joined")
    assert (await a.request("signal", rid=2, to=pid, data=OFFER))["ok"]
    assert (await guest.expect("signal"))["from"] == "a"


async def test_a_denied_guest_never_gets_a_signal(clients):
    mod, a, _ = await call(clients, privacy="private", enable_knocking=True)
    guest = await clients("clinic")
    await guest.send(type="join", name="Pat")
    await guest.expect("waiting")
    request = (await mod.expect("entry-requested"))["request"]
    assert (await mod.request("deny", rid=1, request_id=request["id"]))["ok"]
    assert (await guest.expect("error"))["error"]["code"] == "ENTRY_DENIED"
    ack = await a.request("signal", rid=2, to=request["participant_id"], data=OFFER)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    assert signals(guest) == []


async def test_no_signal_crosses_rooms(clients):
    await call(clients, room="one")
    _, c, _ = await call(clients, room="two")
    x = await member(clients, "one", "x")
    await quiet(x, c)
    # "c" is in room two; "x" in room one signals that id: refused, and c hears nothing.
    ack = await x.request("signal", rid=1, to="c", data=OFFER)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    await quiet(c)
    assert signals(c) == []


@pytest.mark.parametrize(
    "fields",
    [
        {},  # no to, no data
        {"to": "b"},
        {"to": "b", "data": "offer"},
        {"to": 5, "data": OFFER},
        {"to": "b", "data": {"gen": "1"}},
        {"to": "b", "data": {"gen": 1, "description": {"type": "pranswer", "sdp": "x"}}},
        {"to": "b", "data": {"gen": 1, "description": {"type": "offer"}}},
        {"to": "b", "data": {**OFFER, "extra": True}},
        {"to": "b", "data": {"gen": 1, "candidates": [{"candidate": 5}]}},
        {"to": "b", "data": {"gen": 1, "description": {"type": "offer", "sdp": "v" * 40000}}},
        {"to": "b", "data": {"gen": 1, "candidates": [{"candidate": "c"}] * 33}},
        {"to": "", "data": OFFER},
    ],
)
async def test_malformed_and_oversized_signals_are_bad_requests_that_reach_nobody(clients, fields):
    mod, a, b = await call(clients)
    ack = await a.request("signal", rid=1, **fields)
    assert ack["ok"] is False and ack["error"]["code"] == "BAD_REQUEST", ack
    assert "v" * 50 not in ack["error"]["message"]
    await quiet(mod, b)
    assert signals(b) == [] and signals(mod) == []


async def test_viewers_receive_but_never_offer_and_do_not_pair_with_each_other(clients):
    _, a, _ = await call(clients)
    v = await member(clients, "clinic", "v", viewer=True)
    w = await member(clients, "clinic", "w", viewer=True)
    media = v.joined["media"]
    assert media["permissions"] == {
        "audio": False,
        "video": False,
        "screen": False,
        "receive": True,
    }
    assert media["publisher"] is False and sorted(media["peers"]) == ["a", "b", "mod"]
    await quiet(a, v, w)
    # A publisher offers to the viewer; the viewer answers.
    assert (await a.request("signal", rid=1, to="v", data=OFFER))["ok"]
    assert (await v.expect("signal"))["from"] == "a"
    assert (await v.request("signal", rid=2, to="a", data=ANSWER))["ok"]
    assert (await a.expect("signal"))["data"] == ANSWER
    # The viewer may not offer (that is how it would publish), nor talk to another viewer.
    ack = await v.request("signal", rid=3, to="a", data=OFFER)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    ack = await v.request("signal", rid=4, to="w", data=ANSWER)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    await quiet(a, w)
    assert [s["data"] for s in signals(a)] == [ANSWER]
    assert signals(w) == []


async def test_room_controls_change_permissions_and_pause_hangs_up(clients):
    mod, a, b = await call(clients)
    assert (await mod.request("room-mute", rid=1, audio=True))["ok"]
    await quiet(mod, a, b)
    assert last_state(a)["permissions"]["audio"] is False
    assert last_state(a)["permissions"]["video"] is True
    assert last_state(mod)["permissions"]["audio"] is True  # moderators are exempt
    assert (await mod.request("room-mute", rid=2, video=True))["ok"]
    await quiet(mod, a, b)
    assert last_state(b)["permissions"] == {
        "audio": False,
        "video": False,
        "screen": False,
        "receive": True,
    }
    # Muted people still receive and still negotiate (their senders carry nothing).
    assert (await a.request("signal", rid=3, to="b", data=OFFER))["ok"]
    assert (await mod.request("room-unmute", rid=4, audio=True, video=True))["ok"]
    await quiet(mod, a, b)
    assert last_state(a)["permissions"]["audio"] is True
    assert last_state(a)["permissions"]["video"] is True

    assert (await mod.request("room-pause", rid=5))["ok"]
    await quiet(mod, a, b)
    assert last_state(a)["permissions"]["receive"] is False
    assert last_state(a)["peers"] == [] and last_state(mod)["peers"] == []
    ack = await a.request("signal", rid=6, to="b", data=OFFER)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    ack = await mod.request("signal", rid=7, to="a", data=OFFER)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    assert (await mod.request("room-resume", rid=8))["ok"]
    await quiet(mod, a, b)
    assert sorted(last_state(a)["peers"]) == ["b", "mod"]
    assert (await a.request("signal", rid=9, to="b", data=OFFER))["ok"]


async def test_breakouts_separate_media_and_return_reconnects(clients):
    mod, a, b = await call(clients)
    c = await member(clients, "clinic", "c")
    await quiet(mod, a, b, c)
    created = await mod.request("breakout-create", rid=1, participants=2, share=True)
    room_id = created["data"]["rooms"][0]["id"]
    for i, who in enumerate(("a", "b")):
        ack = await mod.request("breakout-move", rid=10 + i, participant_id=who, room_id=room_id)
        assert ack["ok"], ack
    await quiet(mod, a, b, c)
    sa = last_state(a)
    assert sa["room"] == room_id and sa["peers"] == ["b"]
    assert sa["permissions"]["screen"] is True  # the breakout's share flag
    assert sorted(last_state(c)["peers"]) == ["mod"]
    assert (await a.request("signal", rid=2, to="b", data=OFFER))["ok"]
    assert (await b.expect("signal"))["from"] == "a"
    for sender, to in ((a, "c"), (c, "a"), (mod, "b")):
        ack = await sender.request("signal", rid=3, to=to, data=OFFER)
        assert ack["error"]["code"] == "INVALID_PERMISSIONS"
    await quiet(a, c)
    assert [s["from"] for s in signals(b)] == ["a"] and signals(c) == []

    assert (await mod.request("breakout-destroy-all", rid=4))["ok"]
    await quiet(mod, a, b, c)
    assert last_state(a)["room"] == mod.joined["media"]["room"]
    assert sorted(last_state(a)["peers"]) == ["b", "c", "mod"]
    assert last_state(a)["permissions"]["screen"] is True
    assert (await c.request("signal", rid=5, to="a", data=OFFER))["ok"]


async def test_after_leaving_nobody_signals_you(clients):
    mod, a, b = await call(clients)
    await b.send(type="leave")
    await quiet(mod, a)
    assert "b" not in last_state(a)["peers"]
    ack = await a.request("signal", rid=1, to="b", data=OFFER)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"


async def test_media_update_reaches_the_media_room_capped_by_permissions(clients):
    mod, a, b = await call(clients)
    ack = await a.request("media-update", rid=1, audio=True, video=True, screen=False)
    assert ack["data"] == {"audio": True, "video": True, "screen": False}
    got = await b.expect("media-update")
    assert got == {
        "type": "media-update",
        "participant_id": "a",
        "audio": True,
        "video": True,
        "screen": False,
    }
    assert (await mod.request("room-mute", rid=2, audio=True))["ok"]
    await quiet(b)
    assert last_state(b)["states"]["a"] == {"audio": False, "video": True, "screen": False}
    ack = await a.request("media-update", rid=3, audio="yes", video=True)
    assert ack["error"]["code"] == "BAD_REQUEST"


async def test_beyond_the_mesh_limit_people_receive_only(clients, settings):
    from lobby import media

    settings.ANTEROOM_MESH_MAX_PUBLISHERS = "2"
    media.config.cache_clear()
    try:
        mod, a, b = await call(clients)
        assert mod.joined["media"]["publisher"] and a.joined["media"]["publisher"]
        sb = b.joined["media"]
        assert sb["publisher"] is False and sb["limit"] == "mesh-full"
        assert sb["permissions"]["audio"] is False and sb["permissions"]["receive"] is True
        assert sorted(sb["peers"]) == ["a", "mod"]
        ack = await b.request("signal", rid=1, to="a", data=OFFER)
        assert ack["error"]["code"] == "INVALID_PERMISSIONS"
        # a leaves: b takes the free slot.
        await a.send(type="leave")
        await quiet(b)
        assert last_state(b)["publisher"] is True and "limit" not in last_state(b)
    finally:
        media.config.cache_clear()
