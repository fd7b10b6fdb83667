"""Breakout flows over real WebSockets (``config.asgi.application``): what each person's screen
would show, including that a moved socket hears its new room and stops hearing the old one."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from lobby import clock, services
from lobby.models import Participant, Room
from lobby.runtime.process import SERVER_ID
from tests.factories import make_room, make_token

pytestmark = pytest.mark.django_db(transaction=True)


async def setup(clients: Any, n: int = 4, **room_fields: Any) -> tuple[Any, list[Any]]:
    """A moderator ``mod`` and ``n`` participants ``p0``… joined to room ``class``."""
    await database_sync_to_async(make_room)("class", **room_fields)
    mod = await clients("class")
    token = await database_sync_to_async(make_token)(room="class", sub="mod", owner=True)
    assert (await mod.request("join", rid="j", token=token))["ok"]
    await mod.expect("joined")
    people = []
    for i in range(n):
        c = await clients("class")
        t = await database_sync_to_async(make_token)(room="class", sub=f"p{i}", name=f"P{i}")
        assert (await c.request("join", rid="j", token=t))["ok"]
        await c.expect("joined")
        people.append(c)
    return mod, people


async def sweep() -> None:
    """One sweep as this server process (its heartbeat keeps our sockets alive after
    ``clock.advance``)."""
    await database_sync_to_async(services.sweep)(server_id=SERVER_ID)


async def drain(*cs: Any) -> None:
    for c in cs:
        while not await c.nothing(0.05):
            await c.recv()
        c.unread.clear()


async def member_ids(room_id: str) -> list[str]:
    return await database_sync_to_async(
        lambda: sorted(
            Participant.objects.filter(breakout__pk=room_id).values_list(
                "participant_id", flat=True
            )
        )
    )()


async def test_create_and_invite_with_force_join_moves_guests_and_their_sockets(clients):
    mod, people = await setup(clients, n=4)
    await drain(mod, *people)
    ack = await mod.request(
        "breakout-create-and-invite",
        rid=1,
        participants=2,
        max_rooms=4,
        audio=True,
        video=False,
        canvas=False,
        share=True,
        force_join=True,
    )
    assert ack["ok"], ack
    rooms, assignments = ack["data"]["rooms"], ack["data"]["assignments"]
    assert len(rooms) == 2 and sorted(len(v) for v in assignments.values()) == [2, 2]
    assert {(r["capacity"], r["video"], r["share"]) for r in rooms} == {(2, False, True)}
    where = {pid: rid for rid, pids in assignments.items() for pid in pids}
    for i, c in enumerate(people):
        joined = await c.expect("breakout-joined")
        assert joined["room"]["id"] == where[f"p{i}"]
        assert sorted(m["participant_id"] for m in joined["room"]["members"]) == sorted(
            assignments[where[f"p{i}"]]
        )
    created = await mod.expect("breakout-created")
    assert [len(r["members"]) for r in created["rooms"]] == [2, 2]
    assert len((await mod.expect("breakouts-updated"))["rooms"]) == 2
    updated = [await mod.expect("participant-updated") for _ in range(4)]
    assert {u["participant"]["status"] for u in updated} == {"paused"}
    # The moved sockets now hear their breakout room.
    assert (await mod.request("breakout-broadcast", rid=2, text="Wrap up"))["data"] == {"rooms": 2}
    for c in people:
        msg = await c.expect("breakout-message")
        assert msg == {"type": "breakout-message", "text": "Wrap up", "by": "mod"}


async def test_invitation_then_join_or_reject(clients):
    mod, (a, b, c) = await setup(clients, n=3)
    room = (await mod.request("breakout-create", rid=1, participants=3, max_rooms=1))["data"][
        "rooms"
    ][0]
    assert room["members"] == [] and room["capacity"] == 3
    ack = await mod.request("breakout-invite", rid=2, room_id=room["id"], clients=["p0", "p1"])
    assert ack["data"] == {"room_id": room["id"], "clients": ["p0", "p1"], "force_join": False}
    invited = await mod.expect("breakout-invited")
    assert invited == {"type": "breakout-invited", "room_id": room["id"],
                       "clients": ["p0", "p1"], "by": "mod"}  # fmt: skip
    for x in (a, b):
        inv = await x.expect("breakout-invitation")
        assert inv["room"]["id"] == room["id"]
    # p2 was not invited.
    nope = await c.request("breakout-join", rid=3, room_id=room["id"])
    assert nope["error"]["code"] == "NOT_INVITED"

    ack = await a.request("breakout-join", rid=4, room_id=room["id"])
    assert ack["ok"] and [m["participant_id"] for m in ack["data"]["room"]["members"]] == ["p0"]
    joined = await a.expect("breakout-joined")
    assert joined["room"]["members"][0]["status"] == "paused"
    flip = await mod.expect("participant-updated")
    assert flip["participant"] == {"participant_id": "p0", "name": "P0", "role": "participant",
                                   "status": "paused", "breakout_id": room["id"]}  # fmt: skip
    assert (await c.expect("participant-updated"))["participant"]["status"] == "paused"

    ack = await b.request("breakout-reject", rid=5, room_id=room["id"])
    assert ack["data"] == {"room_id": room["id"]}
    rejected = await mod.expect("breakout-invite-rejected")
    assert rejected == {"type": "breakout-invite-rejected", "room_id": room["id"],
                        "participant_id": "p1"}  # fmt: skip
    again = await b.request("breakout-join", rid=6, room_id=room["id"])
    assert again["error"]["code"] == "NOT_INVITED"
    assert await member_ids(room["id"]) == ["p0"]


async def test_members_hear_each_other_but_not_themselves_and_leave_goes_quiet(clients):
    mod, (a, b) = await setup(clients, n=2)
    room = (await mod.request("breakout-create", rid=1, participants=2, max_rooms=1))["data"][
        "rooms"
    ][0]
    await mod.request("breakout-invite", rid=2, room_id=room["id"], clients=["p0", "p1"])
    await a.request("breakout-join", rid=3, room_id=room["id"])
    await a.expect("breakout-joined")
    await drain(a)
    await b.request("breakout-join", rid=4, room_id=room["id"])
    await b.expect("breakout-joined")
    heard = await a.expect("breakout-participant-joined")
    assert heard["participant"]["participant_id"] == "p1"
    await drain(a, b, mod)
    assert "breakout-participant-joined" not in {f["type"] for f in b.seen}

    ack = await b.request("breakout-leave", rid=5)
    assert ack["data"] == {"room_id": room["id"]}
    left = await b.expect("breakout-left")
    assert left == {"type": "breakout-left", "room_id": room["id"], "reason": "left"}
    gone = await a.expect("breakout-participant-left")
    assert gone["participant"]["participant_id"] == "p1"
    back = await mod.expect("participant-updated")
    assert back["participant"]["status"] == "active" and back["participant"]["breakout_id"] is None
    # b no longer hears the room; a still does.
    await drain(a, b)
    await mod.request("breakout-broadcast", rid=6, text="hello rooms")
    assert (await a.expect("breakout-message"))["text"] == "hello rooms"
    assert await b.nothing(0.3)
    again = await b.request("breakout-leave", rid=7)
    assert again["error"]["code"] == "NOT_IN_BREAKOUT"


async def test_paused_participants_still_hear_the_parent_room(clients):
    mod, (a,) = await setup(clients, n=1)
    room = (await mod.request("breakout-create", rid=1, participants=2, max_rooms=1))["data"][
        "rooms"
    ][0]
    await mod.request("breakout-move", rid=2, participant_id="p0", room_id=room["id"])
    await a.expect("breakout-joined")
    await mod.request("room-mute", rid=3, audio=True)
    assert (await a.expect("room-updated"))["room"]["audio_muted"] is True


async def test_clear_all_returns_everyone_and_rooms_can_be_joined_again(clients):
    mod, people = await setup(clients, n=4)
    ack = await mod.request(
        "breakout-create-and-invite", rid=1, participants=2, max_rooms=2, force_join=True
    )
    assignments = ack["data"]["assignments"]
    for c in people:
        await c.expect("breakout-joined")
    ack = await mod.request("breakout-clear-all", rid=2)
    assert ack["data"] == {"count": 4, "rooms": 2}
    for c in people:
        left = await c.expect("breakout-left")
        assert left["reason"] == "cleared"
    layout = await mod.expect("breakouts-updated")
    layout = await mod.expect("breakouts-updated")  # the first one was from the creation
    assert [r["members"] for r in layout["rooms"]] == [[], []]
    # Invited earlier, they may go back.
    room_id, pids = next(iter(assignments.items()))
    c = people[int(pids[0][1:])]
    assert (await c.request("breakout-join", rid=3, room_id=room_id))["ok"]


async def test_destroy_all_returns_everyone_and_resumes_and_unmutes_the_parent(clients):
    mod, people = await setup(clients, n=3)
    await mod.request(
        "breakout-create-and-invite", rid=1, participants=3, max_rooms=1, force_join=True
    )
    for c in people:
        await c.expect("breakout-joined")
    await mod.request("room-pause", rid=2)
    await mod.request("room-mute", rid=3, audio=True, video=True)
    await drain(mod, *people)
    ack = await mod.request("breakout-destroy-all", rid=4)
    assert ack["data"]["count"] == 3 and ack["data"]["rooms"] == 1
    room = ack["data"]["room"]
    assert (room["paused"], room["audio_muted"], room["video_muted"]) == (False, False, False)
    for c in people:
        assert (await c.expect("breakout-left"))["reason"] == "destroyed"
        upd = await c.expect("room-updated")
        assert upd["room"]["paused"] is False and upd["room"]["video_muted"] is False
    assert (await mod.expect("breakouts-updated"))["rooms"] == []
    assert await database_sync_to_async(Room.objects.filter(parent__isnull=False).count)() == 0


async def test_help_and_move(clients):
    mod, (a, b) = await setup(clients, n=2)
    r1, r2 = (await mod.request("breakout-create", rid=1, participants=2, max_rooms=2))["data"][
        "rooms"
    ]
    ack = await mod.request("breakout-move", rid=2, participant_id="p0", room_id=r1["id"])
    assert ack["data"]["participant"]["breakout_id"] == r1["id"]
    assert (await a.expect("breakout-joined"))["room"]["id"] == r1["id"]
    ack = await a.request("breakout-help", rid=3)
    helped = await mod.expect("breakout-help-requested")
    assert ack["data"] == {
        "room_id": r1["id"],
        "id": helped["id"],
        "expires_at": helped["expires_at"],
    }
    assert helped["room_id"] == r1["id"] and helped["participant"]["participant_id"] == "p0"
    nope = await b.request("breakout-help", rid=4)
    assert nope["error"]["code"] == "NOT_IN_BREAKOUT"

    await mod.request("breakout-move", rid=5, participant_id="p0", room_id=r2["id"])
    assert await a.expect("breakout-left") == {
        "type": "breakout-left",
        "room_id": r1["id"],
        "reason": "moved",
    }
    assert (await a.expect("breakout-joined"))["room"]["id"] == r2["id"]
    await mod.request("breakout-move", rid=6, participant_id="p0", room_id=None)
    assert (await a.expect("breakout-left"))["room_id"] == r2["id"]
    # Moves respect capacity.
    await mod.request("breakout-move", rid=7, participant_id="p0", room_id=r1["id"])
    await mod.request("breakout-move", rid=8, participant_id="p1", room_id=r1["id"])
    full = await mod.request("breakout-move", rid=10, participant_id="mod", room_id=r1["id"])
    assert full["error"]["code"] == "BREAKOUT_FULL"
    assert await member_ids(r1["id"]) == ["p0", "p1"]


async def test_timer_warns_then_returns_everyone(clients):
    mod, (a, b) = await setup(clients, n=2)
    ack = await mod.request(
        "breakout-create-and-invite",
        rid=1,
        participants=2,
        max_rooms=1,
        force_join=True,
        duration=120,
    )
    room = ack["data"]["rooms"][0]
    assert room["ends_at"] is not None
    for c in (a, b):
        assert (await c.expect("breakout-joined"))["room"]["ends_at"] == room["ends_at"]
    clock.advance(61)
    await sweep()
    for c in (a, b):
        ending = await c.expect("breakout-ending")
        assert ending == {"type": "breakout-ending", "room_id": room["id"],
                          "ends_at": room["ends_at"]}  # fmt: skip
    clock.advance(60)
    await sweep()
    for c in (a, b):
        assert await c.expect("breakout-left") == {
            "type": "breakout-left",
            "room_id": room["id"],
            "reason": "timer",
        }
    assert await member_ids(room["id"]) == []


async def test_extend_tells_the_room_its_new_end(clients):
    mod, (a,) = await setup(clients, n=1)
    [room] = (
        await mod.request("breakout-create", rid=1, participants=2, max_rooms=1, duration=600)
    )["data"]["rooms"]
    await mod.request("breakout-move", rid=2, participant_id="p0", room_id=room["id"])
    ack = await mod.request("breakout-extend", rid=3, room_id=room["id"], seconds=300)
    [extended] = ack["data"]["rooms"]
    assert extended["ends_at"] > room["ends_at"]
    assert (await a.expect("breakout-extended"))["ends_at"] == extended["ends_at"]


async def test_resuming_socket_is_back_in_its_breakout(clients):
    mod, _ = await setup(clients, n=0)
    guest = await clients("class")
    t = await database_sync_to_async(make_token)(room="class", sub="g", name="G")
    await guest.request("join", rid="j", token=t)
    resume = (await guest.expect("joined"))["resume"]
    [room] = (await mod.request("breakout-create", rid=1, participants=2, max_rooms=1))["data"][
        "rooms"
    ]
    await mod.request("breakout-move", rid=2, participant_id="g", room_id=room["id"])
    await guest.expect("breakout-joined")
    await guest.close()
    again = await clients("class")
    await again.request("join", rid="j", resume=resume)
    snap = await again.expect("joined")
    assert snap["participant"]["breakout_id"] == room["id"]
    assert snap["participant"]["status"] == "paused"
    assert snap["breakouts"][0]["members"][0]["participant_id"] == "g"
    await mod.request("breakout-broadcast", rid=3, text="still there?")
    assert (await again.expect("breakout-message"))["text"] == "still there?"


# Refusals ------------------------------------------------------------------------------------

NO_ROOM = "00000000-0000-0000-0000-000000000000"

BAD_FIELDS = [
    ("breakout-create", {"participants": "2", "max_rooms": 1}),
    ("breakout-create", {"max_rooms": 1}),
    ("breakout-create", {"participants": 2, "max_rooms": True}),
    ("breakout-create", {"participants": 2, "max_rooms": 1, "audio": "yes"}),
    ("breakout-create", {"participants": 2, "max_rooms": 1, "duration": 30}),
    ("breakout-create-and-invite", {"participants": 2, "max_rooms": 1, "force_join": 1}),
    ("breakout-invite", {"room_id": 5, "clients": ["p0"]}),
    ("breakout-invite", {"room_id": "x", "clients": "p0"}),
    ("breakout-invite", {"clients": ["p0"]}),
    ("breakout-join", {}),
    ("breakout-join", {"room_id": ["x"]}),
    ("breakout-join", {"room_id": "x", "role": 3}),
    ("breakout-reject", {"room_id": None}),
    ("breakout-extend", {"seconds": "60"}),
    ("breakout-broadcast", {"text": 5}),
    ("breakout-broadcast", {"text": "x" * 1001}),
    ("breakout-move", {"participant_id": "p0"}),
    ("breakout-move", {"participant_id": 0, "room_id": None}),
    # The fixed ranges (SPEC §3), refused by the message's schema before any service runs.
    ("breakout-create", {"participants": 2, "max_rooms": 0}),
    ("breakout-create", {"participants": 2, "max_rooms": 1, "duration": None, "canvas": None}),
    ("breakout-invite", {"room_id": NO_ROOM, "clients": []}),
    ("breakout-invite", {"room_id": NO_ROOM, "clients": [""]}),
    ("breakout-join", {"room_id": NO_ROOM, "role": "admin"}),
    ("breakout-extend", {"seconds": 0}),
    ("breakout-extend", {"seconds": 14_401}),
    ("breakout-broadcast", {"text": "   "}),
    ("breakout-help-answer", {"participant_id": ""}),
    ("breakout-help-join", {"participant_id": 5}),
    ("breakout-help-join", {}),
    ("breakout-move", {"participant_id": "", "room_id": None}),
]


@pytest.mark.parametrize(("kind", "fields"), BAD_FIELDS)
async def test_ill_typed_fields_are_bad_requests_and_the_socket_lives_on(clients, kind, fields):
    mod, _ = await setup(clients, n=1)
    ack = await mod.request(kind, rid="x", **fields)
    assert ack["ok"] is False and ack["error"]["code"] == "BAD_REQUEST", ack
    assert (await mod.request("breakout-broadcast", rid="y", text="alive"))["ok"]
    assert await database_sync_to_async(Room.objects.filter(parent__isnull=False).count)() == 0


ROOM = "<the breakout room>"  # replaced by the id of the room the world below creates

# Every breakout message, well formed, and who sends it in that world.
WELL_FORMED: dict[str, tuple[str, dict[str, Any]]] = {
    "breakout-create": ("mod", {"participants": 2, "max_rooms": 1}),
    "breakout-create-and-invite": ("mod", {"participants": 2, "max_rooms": 1, "force_join": True}),
    "breakout-invite": ("mod", {"room_id": ROOM, "clients": ["p1"], "force_join": True}),
    "breakout-join": ("p1", {"room_id": ROOM, "role": "participant"}),
    "breakout-reject": ("p1", {"room_id": ROOM}),
    "breakout-leave": ("p0", {}),
    "breakout-clear-all": ("mod", {}),
    "breakout-destroy-all": ("mod", {}),
    "breakout-extend": ("mod", {"room_id": ROOM, "seconds": 60}),
    "breakout-broadcast": ("mod", {"text": "Five minutes left."}),
    "breakout-help": ("p0", {}),
    "breakout-help-answer": ("mod", {"participant_id": "p0"}),
    "breakout-help-join": ("mod", {"participant_id": "p0"}),
    "breakout-move": ("mod", {"participant_id": "p1", "room_id": ROOM}),
}


def test_every_breakout_message_is_listed():
    from breakouts.handlers import HANDLERS

    assert set(WELL_FORMED) == set(HANDLERS)


def _world() -> dict[str, Any]:
    """What a refused message must leave as it was: rooms, presence, invitations, help requests,
    the parent's state and the audit trail."""
    from breakouts.models import BreakoutInvitation, HelpRequest
    from lobby.models import AuditEvent

    parent = Room.objects.get(name="class")
    return {
        "parent": (parent.paused, parent.audio_muted, parent.video_muted),
        "rooms": sorted(
            (str(r.pk), r.capacity, str(r.ends_at)) for r in Room.objects.filter(parent=parent)
        ),
        "people": sorted(
            (p.participant_id, p.status, str(p.breakout_id))
            for p in Participant.objects.filter(room=parent)
        ),
        "invitations": sorted(
            BreakoutInvitation.objects.filter(breakout__parent=parent).values_list(
                "participant_id", "status"
            )
        ),
        "help": sorted(
            HelpRequest.objects.filter(parent=parent).values_list("participant_id", "status")
        ),
        "audit": AuditEvent.objects.count(),
    }


async def _breakout_world(clients: Any, kind: str) -> tuple[dict[str, Any], str]:
    """``mod``, ``p0`` (in a timed breakout room) and ``p1`` (invited to it): a world in which
    ``kind``, well formed, succeeds. Returns the sockets by participant id and the room's id."""
    mod, (a, b) = await setup(clients, n=2)
    [room] = (
        await mod.request("breakout-create", rid=1, participants=3, max_rooms=1, duration=600)
    )["data"]["rooms"]
    assert (await mod.request("breakout-move", rid=2, participant_id="p0", room_id=room["id"]))[
        "ok"
    ]
    assert (await mod.request("breakout-invite", rid=3, room_id=room["id"], clients=["p1"]))["ok"]
    if kind in ("breakout-help-answer", "breakout-help-join"):
        assert (await a.request("breakout-help", rid=4))["ok"]
    await drain(mod, a, b)
    return {"mod": mod, "p0": a, "p1": b}, room["id"]


@pytest.mark.parametrize("kind", sorted(WELL_FORMED))
async def test_an_unknown_field_is_refused_and_changes_nothing(clients, kind):
    """Every breakout message is its strict schema (``breakouts.commands``): a field the schema
    does not name is ``BAD_REQUEST``, as over REST, not silently ignored. The same message
    without it succeeds, so the field is all that was wrong."""
    sockets, room_id = await _breakout_world(clients, kind)
    sender, fields = WELL_FORMED[kind]
    fields = {k: room_id if v == ROOM else v for k, v in fields.items()}
    before = await database_sync_to_async(_world)()

    ack = await sockets[sender].request(kind, rid="x", **fields, colour="red")

    assert ack["ok"] is False and ack["error"]["code"] == "BAD_REQUEST", ack
    assert ack["error"]["message"] == "Unknown fields are not accepted."
    assert await database_sync_to_async(_world)() == before
    for s in sockets.values():
        assert await s.nothing(0.05), s.seen[-1]
    assert (await sockets[sender].request(kind, rid="y", **fields))["ok"]


@pytest.mark.parametrize(
    ("kind", "sender", "fields"),
    [
        ("breakout-invite", "mod", {"room_id": "room-1", "clients": ["p1"]}),
        ("breakout-join", "p1", {"room_id": "room-1"}),
        ("breakout-reject", "p1", {"room_id": "1"}),
        ("breakout-extend", "mod", {"room_id": "", "seconds": 60}),
        ("breakout-move", "mod", {"participant_id": "p1", "room_id": "room-1"}),
    ],
)
async def test_a_room_id_that_is_not_a_uuid_is_breakout_not_found(clients, kind, sender, fields):
    sockets, _ = await _breakout_world(clients, kind)
    before = await database_sync_to_async(_world)()
    ack = await sockets[sender].request(kind, rid="x", **fields)
    assert ack["ok"] is False and ack["error"]["code"] == "BREAKOUT_NOT_FOUND", ack
    assert await database_sync_to_async(_world)() == before


async def test_the_schema_is_checked_before_who_may_act(clients):
    """As over REST (docs/breakouts.md, order of checks): a malformed message is ``BAD_REQUEST``
    whoever sends it; a well-formed one from a participant is ``INVALID_PERMISSIONS``."""
    _, (a,) = await setup(clients, n=1)
    bad = await a.request("breakout-extend", rid=1, seconds=0)
    assert bad["error"]["code"] == "BAD_REQUEST"
    unknown = await a.request("breakout-broadcast", rid=2, text="hi", urgent=True)
    assert unknown["error"]["code"] == "BAD_REQUEST"
    good = await a.request("breakout-extend", rid=3, seconds=60)
    assert good["error"]["code"] == "INVALID_PERMISSIONS"


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("breakout-create", {"participants": 2, "max_rooms": 1}),
        ("breakout-create-and-invite", {"participants": 2, "max_rooms": 1}),
        ("breakout-clear-all", {}),
        ("breakout-destroy-all", {}),
        ("breakout-broadcast", {"text": "hi"}),
        ("breakout-move", {"participant_id": "p0", "room_id": None}),
    ],
)
async def test_participants_cannot_manage_breakouts(clients, kind, fields):
    _, (a,) = await setup(clients, n=1)
    ack = await a.request(kind, rid=1, **fields)
    assert ack["error"]["code"] == "INVALID_PERMISSIONS"


async def test_before_join_and_in_lecture_mode(clients):
    await database_sync_to_async(make_room)("talk", mode="lecture")
    early = await clients("talk")
    ack = await early.request("breakout-create", rid=1, participants=2, max_rooms=1)
    assert ack["error"]["code"] == "NOT_JOINED"
    token = await database_sync_to_async(make_token)(room="talk", sub="host", owner=True)
    await early.request("join", rid=2, token=token)
    ack = await early.request("breakout-create", rid=3, participants=2, max_rooms=1)
    assert ack["error"]["code"] == "BREAKOUT_LECTURE_MODE"
    assert ack["error"]["legacy_code"] == 5067


async def test_limits_and_sizes_over_the_socket(clients):
    mod, _ = await setup(clients, n=1, max_active_talkers=5)
    too_big = await mod.request("breakout-create", rid=1, participants=5, max_rooms=1)
    assert too_big["error"]["code"] == "BREAKOUT_INVALID_SIZE"
    assert (await mod.request("breakout-create", rid=2, participants=4, max_rooms=10))["ok"]
    over = await mod.request("breakout-create", rid=3, participants=2, max_rooms=1)
    assert over["error"]["code"] == "BREAKOUT_LIMIT"
    assert await database_sync_to_async(Room.objects.filter(parent__isnull=False).count)() == 10
    gone = await mod.request("breakout-join", rid=4, room_id="00000000-0000-0000-0000-000000000000")
    assert gone["error"]["code"] == "BREAKOUT_NOT_FOUND"


async def test_a_moderator_in_a_breakout_cannot_create_breakouts(clients):
    mod, _ = await setup(clients, n=0)
    [room] = (await mod.request("breakout-create", rid=1, participants=2, max_rooms=1))["data"][
        "rooms"
    ]
    assert (await mod.request("breakout-join", rid=2, room_id=room["id"], role="moderator"))["ok"]
    nested = await mod.request("breakout-create", rid=3, participants=2, max_rooms=1)
    assert nested["error"]["code"] == "BREAKOUT_FROM_BREAKOUT"
    # Back in the parent, it works again.
    await mod.request("breakout-leave", rid=4)
    assert (await mod.request("breakout-create", rid=5, participants=2, max_rooms=1))["ok"]


async def test_a_reconnecting_guest_sees_its_pending_invitation_again(clients):
    mod, _ = await setup(clients, n=0)
    guest = await clients("class")
    t = await database_sync_to_async(make_token)(room="class", sub="g", name="G")
    await guest.request("join", rid="j", token=t)
    resume = (await guest.expect("joined"))["resume"]
    [room] = (await mod.request("breakout-create", rid=1, participants=2, max_rooms=1))["data"][
        "rooms"
    ]
    await mod.request("breakout-invite", rid=2, room_id=room["id"], clients=["g"])
    assert (await guest.expect("breakout-invitation"))["room"]["id"] == room["id"]
    await guest.close()
    again = await clients("class")
    await again.request("join", rid="j", resume=resume)
    await again.expect("joined")
    replay = await again.expect("breakout-invitation")
    assert replay["room"]["id"] == room["id"] and replay["by"] == "mod"
    assert (await again.request("breakout-join", rid=3, room_id=room["id"]))["ok"]
    # Once in the room (or after rejecting) it is not replayed.
    await again.close()
    third = await clients("class")
    await third.request("join", rid="j", token=t)
    await third.expect("joined")
    await drain(third)
    assert "breakout-invitation" not in {f["type"] for f in third.seen}


async def test_a_refused_join_leaves_the_socket_out_of_the_room(clients):
    mod, (a,) = await setup(clients, n=1)
    [room] = (await mod.request("breakout-create", rid=1, participants=2, max_rooms=1))["data"][
        "rooms"
    ]
    nope = await a.request("breakout-join", rid=2, room_id=room["id"])
    assert nope["error"]["code"] == "NOT_INVITED"
    await drain(a)
    await mod.request("breakout-broadcast", rid=3, text="members only")
    assert await a.nothing(0.3)


async def test_an_uninvited_join_never_subscribes_to_the_breakout(clients, monkeypatch):
    """While the service checks the invitation, the socket must not be in the breakout's group:
    otherwise repeated refused joins would let anyone listen to any breakout room."""
    from channels.layers import get_channel_layer

    from breakouts import services as breakout_services
    from lobby import events as lobby_events

    mod, people = await setup(clients, n=3)
    created = await mod.request(
        "breakout-create",
        rid="c",
        participants=2,
        audio=True,
        video=True,
        canvas=False,
        share=False,
        max_rooms=1,
    )
    room_id = created["data"]["rooms"][0]["id"]
    layer = get_channel_layer()
    group = lobby_events.members_group(room_id)
    seen_in_group: list[bool] = []
    real_join = breakout_services.breakout_join

    def spying_join(**kwargs: Any) -> Any:
        # Nobody has joined this breakout yet: its group must be empty while the service checks.
        seen_in_group.append(bool(getattr(layer, "groups", {}).get(group)))
        return real_join(**kwargs)

    monkeypatch.setattr(breakout_services, "breakout_join", spying_join)
    ack = await people[2].request("breakout-join", rid="x", room_id=room_id)
    assert ack["ok"] is False and ack["error"]["code"] == "NOT_INVITED"
    assert seen_in_group == [False]
    # A broadcast to the breakouts reaches nobody who was refused.
    await mod.request("breakout-broadcast", rid="b", text="secret plan")
    while not await people[2].nothing(0.3):
        await people[2].recv()
    assert all(f["type"] != "breakout-message" for f in people[2].seen)
