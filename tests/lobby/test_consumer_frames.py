"""The socket under bad input, floods, deadlines, and reconnects (SPEC §3).

Whatever a client sends, the consumer answers ``BAD_REQUEST`` (or the fitting code) and keeps
working; reconnecting guests resume their place; rejoining participants replace themselves.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from lobby import clock, services
from lobby.models import EntryRequest, Participant
from tests.lobby.helpers import adb, aroom, atoken, closed_with, count

pytestmark = pytest.mark.django_db(transaction=True)


async def still_works(c: Any, rid: str = "probe") -> None:
    """The socket still answers: a preauth gets its ack and its access-state."""
    ack = await c.request("preauth", rid=rid)
    assert ack["ok"] is True, ack
    assert (await c.expect("access-state"))["level"] in ("full", "lobby", "none")
    assert c.closed is None


def nested(depth: int) -> str:
    return '{"type":"preauth","x":' + "[" * depth + "]" * depth + "}"


MALFORMED: list[tuple[str, str | None, bytes | None]] = [
    ("not-json", "hello", None),
    ("truncated-json", '{"type": "preauth"', None),
    ("binary", None, b'{"type":"preauth"}'),
    ("over-64KiB", json.dumps({"type": "preauth", "pad": "x" * (64 * 1024)}), None),
    (
        "over-64KiB-multibyte",
        json.dumps({"type": "preauth", "p": "é" * 33000}, ensure_ascii=False),
        None,
    ),
    ("nested-too-deep", nested(40), None),
    ("nested-past-the-parser", "[" * 30000 + "]" * 30000, None),
    ("duplicate-keys", '{"type":"preauth","type":"join"}', None),
    ("array", '[{"type":"preauth"}]', None),
    ("string", '"preauth"', None),
    ("number", "42", None),
    ("null", "null", None),
    ("missing-type", '{"token": null}', None),
    ("type-not-a-string", '{"type": 7}', None),
    ("unknown-type", '{"type": "make-me-owner"}', None),
    ("rid-is-a-float", '{"type":"preauth","rid":1.5}', None),
    ("rid-is-an-object", '{"type":"preauth","rid":{"a":1}}', None),
    ("join-name-number", '{"type":"join","name":42}', None),
    ("join-name-control-chars", '{"type":"join","name":"a\\u202eb"}', None),
    ("join-token-number", '{"type":"join","token":42}', None),
    ("join-resume-list", '{"type":"join","resume":["x"]}', None),
    ("join-metadata-string", '{"type":"join","metadata":"x"}', None),
    ("join-metadata-too-big", json.dumps({"type": "join", "metadata": {"x": "y" * 5000}}), None),
    ("join-metadata-nan", '{"type":"join","metadata":{"x":NaN}}', None),
    ("join-metadata-infinity", '{"type":"join","metadata":{"x":-Infinity}}', None),
]


@pytest.mark.parametrize(("name", "text", "data"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_malformed_frame_is_bad_request_and_the_socket_lives_on(clients, name, text, data):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    c = await clients()
    await c.send_raw(text=text, data=data)
    err = await c.expect("error")
    assert err["error"]["code"] == "BAD_REQUEST", err
    assert set(err["error"]) >= {"code", "message"}
    await still_works(c)
    # Nothing was knocked or stored, and a proper join still works afterwards.
    assert await count(EntryRequest) == 0
    await c.send(type="join", name="Pat")
    await c.expect("waiting")


@pytest.mark.parametrize(
    "msg",
    [
        {"type": "join", "name": 42},
        {"type": "join", "token": 42},
        {"type": "join", "metadata": []},
        {"type": "preauth", "token": "not-a-jwt"},
    ],
    ids=["name", "token", "metadata", "preauth-token"],
)
async def test_a_failed_request_gets_exactly_one_ack(clients, msg):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    c = await clients()
    ack = await c.request(msg["type"], rid="once", **{k: v for k, v in msg.items() if k != "type"})
    assert ack["ok"] is False
    assert ack["error"]["code"] in ("BAD_REQUEST", "INVALID_TOKEN")
    await still_works(c)
    acks = [f for f in c.seen if f["type"] == "ack" and f["rid"] == "once"]
    assert len(acks) == 1, acks


async def test_a_frame_just_under_64KiB_is_accepted(clients):
    await aroom(name="clinic")
    c = await clients()
    # Padded with JSON whitespace: a frame carries no fields its message does not define.
    frame = '{"type":"preauth","rid":"big"}'
    text = frame[:-1] + " " * (64 * 1024 - len(frame)) + "}"
    assert len(text.encode()) == 64 * 1024
    await c.send_raw(text=text)
    ack = await c.expect("ack")
    assert ack["rid"] == "big" and ack["ok"] is True


async def test_a_flood_is_rate_limited_then_the_socket_recovers(clients):
    await aroom(name="clinic")
    c = await clients()
    for i in range(150):
        await c.send(type="no-such-type", rid=i)
    replies = [await c.recv() for _ in range(150)]
    codes = [r["error"]["code"] for r in replies]
    # Bursts of 60 are allowed, then the socket is held to 30 per second.
    assert codes[:60] == ["BAD_REQUEST"] * 60
    assert codes.count("RATE_LIMITED") >= 60
    assert c.closed is None
    await asyncio.sleep(1.2)
    await still_works(c)


@pytest.mark.parametrize(
    "msg",
    [
        {"type": "admit", "request_id": "00000000-0000-0000-0000-000000000000"},
        {"type": "deny", "request_id": "00000000-0000-0000-0000-000000000000"},
        {"type": "admit-all"},
        {"type": "deny-all"},
        {"type": "room-pause"},
        {"type": "room-resume"},
        {"type": "room-mute", "audio": True},
        {"type": "room-unmute", "video": True},
        {"type": "update-name", "name": "X"},
        {"type": "cancel"},
    ],
    ids=lambda m: m["type"],
)
async def test_actions_before_join_are_not_joined(clients, msg):
    await aroom(name="clinic")
    c = await clients()
    ack = await c.request(msg["type"], rid="x", **{k: v for k, v in msg.items() if k != "type"})
    assert ack["ok"] is False and ack["error"]["code"] == "NOT_JOINED"
    await still_works(c)


async def test_no_join_within_the_deadline_closes_4400(clients, settings):
    settings.ANTEROOM_JOIN_TIMEOUT = 0.3
    await aroom(name="clinic")
    idle = await clients()
    joined = await clients()
    await joined.request("join", rid="j")
    preauthed = await clients()
    await preauthed.request("preauth", rid="p")
    err = await idle.expect("error", timeout=3)
    assert err["error"]["code"] == "BAD_REQUEST"
    assert await closed_with(idle) == 4400
    # Sockets that joined (or preauthed) in time stay open.
    await asyncio.sleep(0.3)
    await still_works(joined, rid="j2")
    await still_works(preauthed, rid="p2")


async def test_a_join_sent_in_time_is_not_cut_off_by_a_slow_database(
    clients, settings, monkeypatch
):
    """The deadline is for sending join, not for the server to store the knock: under a storm
    the database may take longer than the deadline, and the guest must still be told waiting."""
    import time

    settings.ANTEROOM_JOIN_TIMEOUT = 0.3
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    slow_plan = services.join_plan

    def join_plan(**kwargs: Any) -> Any:
        time.sleep(0.8)  # longer than the deadline, like a queued ORM thread
        return slow_plan(**kwargs)

    monkeypatch.setattr(services, "join_plan", join_plan)
    guest = await clients()
    await guest.send(type="join", name="Ann", rid="j")
    waiting = await guest.expect("waiting", timeout=5)
    ack = await guest.expect("ack", timeout=5)
    assert ack["ok"] is True and ack["data"]["request_id"] == waiting["request"]["id"]
    assert await guest.nothing(0.6)  # no BAD_REQUEST, no close
    assert await count(EntryRequest, status="pending") == 1


@pytest.mark.parametrize(
    "origin",
    [[(b"origin", b"http://evil.example")], [(b"origin", b"null")], []],
    ids=["other-site", "null", "none"],
)
async def test_a_bad_origin_is_refused_at_the_handshake(origin):
    from config.asgi import application

    await aroom(name="clinic")
    comm = WebsocketCommunicator(application, "/ws/rooms/clinic/", headers=origin)
    connected, _ = await comm.connect()
    assert connected is False
    await comm.disconnect()


async def test_join_unknown_room_closes_4404(clients):
    c = await clients("nowhere")
    await c.send(type="join", name="Pat")
    assert (await c.expect("error"))["error"]["code"] == "ROOM_NOT_FOUND"
    assert await closed_with(c) == 4404


async def test_private_room_without_knocking_is_access_denied_4403(clients):
    await aroom(name="vault", privacy="private", enable_knocking=False)
    c = await clients("vault")
    pre = await c.request("preauth", rid="p")
    assert pre["data"] == {"level": "none"}
    assert (await c.expect("access-state")) == {
        "type": "access-state",
        "level": "none",
        "reason": "private-room",
    }
    await c.send(type="join", name="Pat")
    assert (await c.expect("error"))["error"]["code"] == "ACCESS_DENIED"
    assert await closed_with(c) == 4403
    assert await count(EntryRequest) == 0 and await count(Participant) == 0


# Reconnects --------------------------------------------------------------------------------


async def _host_and_guest(clients, **room):
    await aroom(name="clinic", privacy="private", enable_knocking=True, **room)
    host = await clients()
    await host.request("join", token=await atoken(sub="host", name="Host", owner=True))
    await host.expect("joined")
    guest = await clients(client=("10.0.0.5", 4000))
    await guest.send(type="join", name="Pat", metadata={"why": "checkup"})
    waiting = await guest.expect("waiting")
    knock = await host.expect("entry-requested")
    assert knock["request"]["id"] == waiting["request"]["id"]
    return host, guest, waiting


async def test_resume_after_a_socket_drop_keeps_the_request(clients):
    host, guest, waiting = await _host_and_guest(clients)
    await guest.close()
    gone = await host.expect("entry-updated")
    assert gone["request"]["id"] == waiting["request"]["id"]
    assert gone["request"]["connected"] is False
    clock.advance(5)
    back = await clients(client=("10.0.0.5", 4001))
    await back.send(type="join", resume=waiting["resume"])
    again = await back.expect("waiting")
    assert again["request"] == waiting["request"]  # same id, requested_at and expires_at
    assert again["resume"] != waiting["resume"]
    pos = await back.expect("queue-position")
    assert (pos["position"], pos["waiting"]) == (1, 1)
    upd = await host.expect("entry-updated")
    assert upd["request"]["id"] == waiting["request"]["id"]
    assert upd["request"]["connected"] is True
    assert upd["request"]["name"] == "Pat" and upd["request"]["metadata"] == {"why": "checkup"}
    assert await host.nothing(0.3)
    assert [f["type"] for f in host.seen].count("entry-requested") == 1
    assert await count(EntryRequest) == 1
    # And the resumed guest is admitted through the same row.
    ack = await host.request("admit", rid="a", request_id=waiting["request"]["id"])
    assert ack["data"]["effective"] is True
    assert (await back.expect("joined"))["participant"]["name"] == "Pat"


async def test_resume_after_admission_while_away_joins(clients):
    host, guest, waiting = await _host_and_guest(clients)
    await guest.close()
    await host.expect("entry-updated")
    ack = await host.request("admit", rid="a", request_id=waiting["request"]["id"])
    assert ack["data"] == {
        "request_id": waiting["request"]["id"],
        "outcome": "admitted",
        "effective": True,
    }
    joined_evt = await host.expect("participant-joined")
    back = await clients(client=("10.0.0.5", 4001))
    ack = await back.request("join", rid="r", resume=waiting["resume"])
    assert ack["ok"] and ack["data"]["level"] == "full"
    joined = await back.expect("joined")
    assert joined["participant"]["participant_id"] == joined_evt["participant"]["participant_id"]
    assert joined["participant"]["name"] == "Pat"
    assert {p["name"] for p in joined["participants"]} == {"Host", "Pat"}
    assert await count(Participant) == 2
    # Now a member: room events reach it.
    await host.request("room-pause", rid="p")
    assert (await back.expect("room-updated"))["room"]["paused"] is True


async def test_resume_after_denial_is_entry_denied(clients):
    host, guest, waiting = await _host_and_guest(clients)
    await guest.close()
    await host.request("deny", rid="d", request_id=waiting["request"]["id"], reason="Not today")
    back = await clients(client=("10.0.0.5", 4001))
    await back.send(type="join", resume=waiting["resume"])
    err = await back.expect("error")
    assert err["error"] == {"code": "ENTRY_DENIED", "message": "Not today"}
    assert await closed_with(back) == 4403
    assert await count(Participant, role="participant") == 0


async def test_resume_after_timeout_is_entry_timeout(clients):
    host, guest, waiting = await _host_and_guest(clients)
    await guest.close()
    clock.advance(61)
    await adb(services.sweep)()
    gone = await host.expect("entry-canceled")
    assert (gone["request_id"], gone["reason"]) == (waiting["request"]["id"], "timeout")
    back = await clients(client=("10.0.0.5", 4001))
    await back.send(type="join", resume=waiting["resume"])
    assert (await back.expect("error"))["error"]["code"] == "ENTRY_TIMEOUT"
    assert await closed_with(back) == 4408


async def test_resume_past_the_deadline_before_the_sweep_is_entry_timeout(clients):
    _host, guest, waiting = await _host_and_guest(clients)
    await guest.close()
    clock.advance(61)
    back = await clients(client=("10.0.0.5", 4001))
    await back.send(type="join", resume=waiting["resume"])
    assert (await back.expect("error"))["error"]["code"] == "ENTRY_TIMEOUT"
    assert await closed_with(back) == 4408


async def test_a_spent_resume_key_does_not_sneak_past_the_lobby(clients):
    host, guest, waiting = await _host_and_guest(clients)
    assert (await guest.request("cancel", rid="c"))["data"] == {"canceled": True}
    back = await clients(client=("10.0.0.5", 4001))
    await back.send(type="join", resume=waiting["resume"], name="Pat again")
    again = await back.expect("waiting")  # a fresh knock, not a way in
    assert again["request"]["id"] != waiting["request"]["id"]
    assert (await host.expect("entry-canceled"))["request_id"] == waiting["request"]["id"]
    assert (await host.expect("entry-requested"))["request"]["name"] == "Pat again"
    assert await count(Participant, role="participant") == 0


async def test_rejoin_with_the_same_sub_replaces_the_presence(clients):
    await aroom(name="clinic")
    host = await clients()
    await host.request("join", token=await atoken(sub="host", owner=True))
    token = await atoken(sub="m1", name="Member")
    first = await clients()
    await first.request("join", rid="1", token=token)
    await first.expect("joined")
    assert (await host.expect("participant-joined"))["participant"]["participant_id"] == "m1"
    second = await clients()
    await second.request("join", rid="2", token=token)
    joined = await second.expect("joined")
    assert [p["participant_id"] for p in joined["participants"]].count("m1") == 1
    err = await first.expect("error")
    assert err["error"]["code"] == "REPLACED"
    assert await closed_with(first) == 4409
    assert await count(Participant, participant_id="m1") == 1
    upd = await host.expect("participant-updated")
    assert upd["participant"]["participant_id"] == "m1"
    # The new socket is the live one: it hears room events; the old one's close changed nothing.
    await host.request("room-pause", rid="p")
    assert (await second.expect("room-updated"))["room"]["paused"] is True
    p = await adb(Participant.objects.get)(participant_id="m1")
    assert p.status == "active" and p.disconnected_at is None


async def test_a_late_moderator_gets_every_pending_request_replayed(clients):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    guests = []
    for n in range(4):
        g = await clients(client=(f"10.0.1.{n}", 4000))
        await g.send(type="join", name=f"Patient {n}")
        guests.append((await g.expect("waiting"))["request"]["id"])
        if n == 1:
            assert (await g.request("cancel", rid="c"))["ok"]
    pending = [guests[0], guests[2], guests[3]]
    for sub in ("dr", "nurse"):
        mod = await clients()
        await mod.request("join", token=await atoken(sub=sub, grant={"canModerate": True}))
        await mod.expect("joined")
        replay = [await mod.expect("entry-requested") for _ in pending]
        assert [r["request"]["id"] for r in replay] == pending
        assert [r["request"]["name"] for r in replay] == ["Patient 0", "Patient 2", "Patient 3"]
        assert await mod.nothing(0.2)
    # A participant (not a moderator) is told nothing about the queue.
    member = await clients()
    await member.request("join", token=await atoken(sub="m"))
    await member.expect("joined")
    assert await member.nothing(0.3)
    assert "entry-requested" not in {f["type"] for f in member.seen}


# Knock limits over the socket ------------------------------------------------------------------


def _cookie(browser: str) -> list[tuple[bytes, bytes]]:
    from django.core import signing

    from lobby.consumers import GUEST_COOKIE, GUEST_COOKIE_SALT

    value = signing.dumps(browser, salt=GUEST_COOKIE_SALT)
    return [(b"cookie", f"{GUEST_COOKIE}={value}".encode())]


async def test_three_knocks_per_browser_cookie(clients):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    for n in range(3):
        g = await clients(headers=_cookie("browser-1"), client=(f"10.2.0.{n}", 4000))
        await g.send(type="join", name=f"try {n}")
        await g.expect("waiting")
        await g.request("cancel", rid="c")
    # The same browser from yet another address is refused...
    g = await clients(headers=_cookie("browser-1"), client=("10.2.0.99", 4000))
    await g.send(type="join", name="again")
    assert (await g.expect("error"))["error"]["code"] == "ENTRY_RATE_LIMITED"
    assert await closed_with(g) == 4429
    # ...while another browser, and a cookie whose signature is forged, are still let knock.
    other = await clients(headers=_cookie("browser-2"), client=("10.2.0.99", 4000))
    await other.send(type="join", name="other")
    await other.expect("waiting")
    forged = [(b"cookie", b"anteroom_guest=browser-1")]
    f = await clients(headers=forged, client=("10.2.0.98", 4000))
    await f.send(type="join", name="forged")
    await f.expect("waiting")
    assert await count(EntryRequest) == 5


async def test_thirty_browsers_behind_one_address_then_the_raid_stops(clients):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    for n in range(30):
        g = await clients(headers=_cookie(f"b{n}"), client=("203.0.113.5", 5000 + n))
        await g.send(type="join", name=f"Patient {n}")
        await g.expect("waiting")
    late = await clients(headers=_cookie("b-late"), client=("203.0.113.5", 6000))
    await late.send(type="join", name="One too many")
    assert (await late.expect("error"))["error"]["code"] == "ENTRY_RATE_LIMITED"
    assert await closed_with(late) == 4429
    assert await count(EntryRequest, status="pending") == 30


async def latest_position(c: Any) -> tuple[int, int]:
    """The last queue-position the guest holds once things settle."""
    while not await c.nothing(0.3):
        c.unread.append(await c.recv())
    positions = [f for f in c.unread if f["type"] == "queue-position"]
    c.unread = [f for f in c.unread if f["type"] != "queue-position"]
    assert positions, [f["type"] for f in c.seen]
    return positions[-1]["position"], positions[-1]["waiting"]


async def test_queue_positions_move_up_as_the_queue_moves(clients):
    host, first, w1 = await _host_and_guest(clients)
    second = await clients(client=("10.0.0.6", 4000))
    await second.send(type="join", name="Sam")
    await second.expect("waiting")
    third = await clients(client=("10.0.0.7", 4000))
    await third.send(type="join", name="Kim")
    await third.expect("waiting")
    assert await latest_position(first) == (1, 3)
    assert await latest_position(second) == (2, 3)
    assert await latest_position(third) == (3, 3)
    # The first is admitted: everyone behind moves up one.
    await host.request("admit", rid="a", request_id=w1["request"]["id"])
    await first.expect("joined")
    assert await latest_position(second) == (1, 2)
    assert await latest_position(third) == (2, 2)
    # The one in front cancels: the last is next.
    await second.request("cancel", rid="c")
    assert await latest_position(third) == (1, 1)
    # An admitted guest hears no more about the queue.
    while not await first.nothing(0.2):
        await first.recv()
    kinds = [f["type"] for f in first.seen]
    assert "queue-position" not in kinds[kinds.index("joined") :]


async def test_leaving_is_told_to_the_room(clients):
    await aroom(name="clinic")
    host = await clients()
    await host.request("join", token=await atoken(sub="host", owner=True))
    member = await clients()
    await member.request("join", token=await atoken(sub="m1", name="Member"))
    await host.expect("participant-joined")
    ack = await member.request("leave", rid="bye")
    assert ack["ok"] is True
    assert await closed_with(member) == 1000
    left = await host.expect("participant-left")
    assert left["participant"]["participant_id"] == "m1"
    assert left["participant"]["status"] == "left"
    assert await count(Participant, status="left") == 1


async def test_admitting_the_same_id_again_replaces_the_first_presence(clients):
    """A panelist (ask token with a sub) is admitted, then knocks again from a second tab and is
    admitted again: one presence, the first tab is closed as replaced, like a direct rejoin."""
    await aroom(name="clinic")
    host = await clients()
    await host.request("join", token=await atoken(sub="host", owner=True))
    await host.expect("joined")
    token = await atoken(sub="panel", name="Panel", join_policy={"mode": "ask"})
    first = await clients()
    await first.send(type="join", token=token)
    w1 = await first.expect("waiting")
    await host.request("admit", rid="a1", request_id=w1["request"]["id"])
    await first.expect("joined")
    assert (await host.expect("participant-joined"))["participant"]["participant_id"] == "panel"
    second = await clients()
    await second.send(type="join", token=token)
    w2 = await second.expect("waiting")
    await host.request("admit", rid="a2", request_id=w2["request"]["id"])
    await second.expect("joined")
    assert (await first.expect("error"))["error"]["code"] == "REPLACED"
    assert await closed_with(first) == 4409
    upd = await host.expect("participant-updated")
    assert upd["participant"]["participant_id"] == "panel"
    assert await count(Participant, participant_id="panel") == 1
    while not await host.nothing(0.3):
        await host.recv()
    assert [f["type"] for f in host.seen].count("participant-joined") == 1
    # The second tab is the live presence.
    await host.request("room-pause", rid="p")
    assert (await second.expect("room-updated"))["room"]["paused"] is True


async def test_a_member_who_drops_and_resumes_within_grace_stays(clients, settings):
    settings.ANTEROOM_DISCONNECT_GRACE = 15
    await aroom(name="clinic")
    host = await clients()
    await host.request("join", token=await atoken(sub="host", owner=True))
    member = await clients()
    await member.send(type="join", name="Walk-in")  # public room, no token
    joined = await member.expect("joined")
    pid = joined["participant"]["participant_id"]
    await host.expect("participant-joined")
    await member.close()
    clock.advance(10)
    await adb(services.sweep)()
    back = await clients()
    ack = await back.request("join", rid="r", resume=joined["resume"])
    assert ack["data"] == {"participant_id": pid, "level": "full"}
    again = await back.expect("joined")
    assert again["participant"]["participant_id"] == pid
    assert again["resume"] and again["resume"] != joined["resume"]
    assert (await host.expect("participant-updated"))["participant"]["participant_id"] == pid
    clock.advance(10)
    await adb(services.sweep)()
    while not await host.nothing(0.3):
        await host.recv()
    assert "participant-left" not in {f["type"] for f in host.seen}, host.seen
    assert await count(Participant, participant_id=pid, status="active") == 1
    # Without the resume key, after the grace period, the presence is gone.
    await back.close()
    clock.advance(16)
    await adb(services.sweep)()
    assert (await host.expect("participant-left"))["participant"]["participant_id"] == pid
