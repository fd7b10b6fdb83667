"""Breakout services called directly: each SPEC §2 rule with its error code, that a refused call
changed nothing and told nobody, and the exact events and audiences of each change.

``sent`` holds what the services handed to the channel layer after commit as (group, message)
pairs: ``mods.<parent>`` moderators, ``members.<room>`` a room's members (parent or breakout),
``pt.<parent>.<hash>`` one participant's sockets.
"""

from __future__ import annotations

from typing import Any

import pytest

from breakouts import services as bs
from breakouts.models import BreakoutInvitation
from lobby import clock, events, services
from lobby.errors import (
    AlreadyInBreakout,
    AnteroomError,
    BadRequest,
    BreakoutFromBreakout,
    BreakoutFull,
    BreakoutInvalidSize,
    BreakoutLectureMode,
    BreakoutLimit,
    BreakoutNotFound,
    InvalidPermissions,
    NotFound,
    NotInBreakout,
    NotInvited,
)
from lobby.models import Participant, Room
from tests.factories import conn, frames_to, members, mods, present

from .helpers import Party, assert_consistent, membership, party, to_person, who

pytestmark = pytest.mark.django_db(transaction=True)


def create(p: Party, *, capacity: int = 3, rooms: int = 2, **kw: Any) -> list[Room]:
    return bs.breakout_rooms_create(
        parent=p.room, actor=p.mod, participants=capacity, max_rooms=rooms, **kw
    )


def snapshot(parent: Room) -> tuple[Any, ...]:
    """Everything a refused call must leave as it was."""
    return (
        sorted(map(str, Room.objects.filter(parent=parent).values_list("pk", flat=True))),
        membership(parent),
        sorted(BreakoutInvitation.objects.values_list("participant_id", "status")),
        Room.objects.filter(pk=parent.pk).values("paused", "audio_muted", "video_muted").get(),
    )


def refused(sent: Any, parent: Room, error: type[AnteroomError], fn: Any, /, **kw: Any) -> None:
    before = snapshot(parent)
    sent.items.clear()
    with pytest.raises(error):
        fn(**kw)
    assert snapshot(parent) == before
    assert sent.items == []


# Creating ------------------------------------------------------------------------------------


def test_create_makes_numbered_empty_rooms_and_tells_moderators(sent):
    p = party()
    sent.items.clear()
    rooms = create(p, capacity=4, rooms=3, canvas=True, share=True, duration=600)
    assert [r.number for r in rooms] == [1, 2, 3]
    assert {(r.capacity, r.audio, r.video, r.canvas, r.share) for r in rooms} == {
        (4, True, True, True, True)
    }
    assert all(r.ends_at is not None for r in rooms)
    [created, updated] = frames_to(sent, mods(p.room))
    assert created["type"] == "breakout-created"
    assert [r["number"] for r in created["rooms"]] == [1, 2, 3]
    assert created["rooms"][0] == {
        "id": str(rooms[0].pk),
        "name": "breakout-1",
        "number": 1,
        "capacity": 4,
        "audio": True,
        "video": True,
        "canvas": True,
        "share": True,
        "members": [],
        "ends_at": events._ts(rooms[0].ends_at),
    }
    assert updated["type"] == "breakouts-updated" and len(updated["rooms"]) == 3
    # Nothing went to non-moderators.
    assert [g for g, _ in sent.items] == [mods(p.room)] * len(sent.items)


@pytest.mark.parametrize(
    "op",
    [
        "create",
        "create-and-invite",
        "invite",
        "join",
        "reject",
        "leave",
        "move",
        "clear-all",
        "destroy-all",
        "extend",
        "broadcast",
        "help",
    ],
)
def test_every_breakout_operation_fails_in_lecture_mode(sent, op):
    p = party(mode="lecture")
    # A breakout row left over from group mode must not make any operation work.
    stray = Room.objects.create(name="breakout-1", parent=p.room, number=1, capacity=3)
    calls = {
        "create": lambda: create(p),
        "create-and-invite": lambda: bs.breakout_rooms_create_and_invite(
            parent=p.room, actor=p.mod, participants=3, max_rooms=3
        ),
        "invite": lambda: bs.breakout_invite(
            parent=p.room, actor=p.mod, room_id=str(stray.pk), clients=["p0"]
        ),
        "join": lambda: bs.breakout_join(parent=p.room, participant_id="p0", room_id=stray.pk),
        "reject": lambda: bs.breakout_reject(parent=p.room, participant_id="p0", room_id=stray.pk),
        "leave": lambda: bs.breakout_leave(parent=p.room, participant_id="p0"),
        "move": lambda: bs.breakout_move(
            parent=p.room, actor=p.mod, participant_id="p0", room_id=str(stray.pk)
        ),
        "clear-all": lambda: bs.breakout_rooms_clear_all(parent=p.room, actor=p.mod),
        "destroy-all": lambda: bs.breakout_rooms_destroy_all(parent=p.room, actor=p.mod),
        "extend": lambda: bs.breakout_extend(parent=p.room, actor=p.mod, seconds=60),
        "broadcast": lambda: bs.breakout_broadcast(parent=p.room, actor=p.mod, text="hi"),
        "help": lambda: bs.breakout_help(parent=p.room, participant_id="p0"),
    }
    before = snapshot(p.room)
    sent.items.clear()
    with pytest.raises(BreakoutLectureMode) as err:
        calls[op]()
    assert err.value.as_dict()["code"] == "BREAKOUT_LECTURE_MODE"
    assert err.value.as_dict()["legacy_code"] == 5067
    assert snapshot(p.room) == before and sent.items == []


def test_a_room_with_breakouts_cannot_switch_to_lecture_mode(sent):
    p = party()
    create(p, rooms=1)
    with pytest.raises(BreakoutLectureMode):
        services.room_update(room=p.room, actor=services.Actor.api("ops"), mode="lecture")
    assert p.refresh().mode == "group"
    bs.breakout_rooms_destroy_all(parent=p.room, actor=p.mod)
    assert (
        services.room_update(room=p.room, actor=services.Actor.api("ops"), mode="lecture").mode
        == "lecture"
    )


def test_at_most_ten_breakout_rooms_per_parent(sent):
    p = party()
    create(p, rooms=6)
    create(p, rooms=4)
    refused(sent, p.room, BreakoutLimit, create, p=p, rooms=1)
    assert Room.objects.filter(parent=p.room).count() == 10
    # Destroying frees the numbers again.
    bs.breakout_rooms_destroy_all(parent=p.room, actor=p.mod)
    assert [r.number for r in create(p, rooms=10)] == list(range(1, 11))


def test_asking_for_more_than_ten_rooms_at_once_creates_none(sent):
    p = party()
    refused(sent, p.room, BreakoutLimit, create, p=p, rooms=11)


@pytest.mark.parametrize(("talkers", "ok", "bad"), [(12, [2, 11], [1, 12, 0]), (3, [2], [1, 3])])
def test_capacity_is_two_to_max_active_talkers_minus_one(sent, talkers, ok, bad):
    p = party(max_active_talkers=talkers)
    for size in bad:
        refused(sent, p.room, BreakoutInvalidSize, create, p=p, capacity=size, rooms=1)
    for size in ok:
        assert create(p, capacity=size, rooms=1)[0].capacity == size


@pytest.mark.parametrize(
    "fields",
    [
        {"capacity": "3"},
        {"capacity": True},
        {"rooms": 0},
        {"rooms": 1.5},
        {"audio": "yes"},
        {"share": 1},
        {"duration": 59},
        {"duration": 14_401},
        {"duration": "600"},
    ],
)
def test_create_refuses_ill_typed_fields(sent, fields):
    p = party()
    refused(sent, p.room, BadRequest, create, p=p, **fields)


def test_only_moderators_manage_breakouts(sent):
    p = party()
    [room] = create(p, rooms=1)
    guest = services.Actor.participant(who(p.room, "p0"))
    calls: list[tuple[Any, dict[str, Any]]] = [
        (create, {"p": Party(room=p.room, mod=guest)}),
        (bs.breakout_invite, {"parent": p.room, "actor": guest, "room_id": str(room.pk),
                              "clients": ["p1"]}),
        (bs.breakout_move, {"parent": p.room, "actor": guest, "participant_id": "p1",
                            "room_id": str(room.pk)}),
        (bs.breakout_rooms_clear_all, {"parent": p.room, "actor": guest}),
        (bs.breakout_rooms_destroy_all, {"parent": p.room, "actor": guest}),
        (bs.breakout_broadcast, {"parent": p.room, "actor": guest, "text": "hi"}),
    ]  # fmt: skip
    for fn, kw in calls:
        refused(sent, p.room, InvalidPermissions, fn, **kw)


def test_a_moderator_inside_a_breakout_cannot_create_breakouts(sent):
    p = party()
    [room] = create(p, rooms=1)
    bs.breakout_join(parent=p.room, participant_id="mod", room_id=str(room.pk))
    refused(sent, p.room, BreakoutFromBreakout, create, p=p)
    refused(
        sent,
        p.room,
        BreakoutFromBreakout,
        bs.breakout_rooms_create_and_invite,
        parent=p.room,
        actor=p.mod,
        participants=3,
        max_rooms=3,
    )


def test_a_breakout_room_cannot_have_breakout_rooms(sent):
    p = party()
    [room] = create(p, rooms=1)
    with pytest.raises(BreakoutFromBreakout):
        bs.breakout_rooms_create(parent=room, actor=p.mod, participants=2, max_rooms=1)
    assert not Room.objects.filter(parent=room).exists()


# Create and invite ---------------------------------------------------------------------------


def test_create_and_invite_spreads_participants_evenly_and_invites_them(sent):
    p = party(n=7, viewers=2, mods=2)
    sent.items.clear()
    rooms, assignments = bs.breakout_rooms_create_and_invite(
        parent=p.room, actor=p.mod, participants=3, max_rooms=5
    )
    # The fewest rooms of 3 that hold 7: three rooms of 3, 2, 2.
    assert len(rooms) == 3
    assert sorted(len(v) for v in assignments.values()) == [2, 2, 3]
    placed = [pid for v in assignments.values() for pid in v]
    assert sorted(placed) == sorted(p.people)  # moderators and viewers stay out
    # Nobody moved yet: they are invited.
    assert all(v is None for v in membership(p.room).values())
    for room in rooms:
        for pid in assignments[str(room.pk)]:
            [frame] = to_person(sent, p.room, pid)
            assert frame["type"] == "breakout-invitation"
            assert frame["room"]["id"] == str(room.pk)
    to_mods = frames_to(sent, mods(p.room))
    assert [f["type"] for f in to_mods] == [
        "breakout-created",
        "breakout-invited",
        "breakout-invited",
        "breakout-invited",
        "breakouts-updated",
    ]
    assert {f["room_id"]: f["clients"] for f in to_mods[1:4]} == assignments
    assert {f["by"] for f in to_mods[1:4]} == {"mod"}
    assert sent.to(members(p.room)) == []  # no status flipped
    # Each invitee can accept or decline.
    first = rooms[0]
    a, b = assignments[str(first.pk)][:2]
    bs.breakout_join(parent=p.room, participant_id=a, room_id=str(first.pk))
    bs.breakout_reject(parent=p.room, participant_id=b, room_id=str(first.pk))
    assert membership(p.room)[a] == str(first.pk) and membership(p.room)[b] is None
    assert_consistent(p.room)


def test_create_and_invite_with_force_join_moves_everyone_at_once(sent):
    p = party(n=5)
    sent.items.clear()
    _, assignments = bs.breakout_rooms_create_and_invite(
        parent=p.room, actor=p.mod, participants=2, max_rooms=3, force_join=True
    )
    assert sorted(len(v) for v in assignments.values()) == [1, 2, 2]
    where = membership(p.room)
    for room_id, pids in assignments.items():
        for pid in pids:
            assert where[pid] == room_id and who(p.room, pid).status == "paused"
            [m] = sent.to(events.participant_group(p.room.pk, pid))
            assert m["action"] == "groups"
            assert m["add"] == [members(room_id)] and m["discard"] == []
            assert m["breakout_id"] == room_id
            [frame] = m["frames"]
            assert frame["type"] == "breakout-joined"
            assert sorted(x["participant_id"] for x in frame["room"]["members"]) == sorted(pids)
    assert where["mod"] is None
    updates = [f for f in frames_to(sent, members(p.room)) if f["type"] == "participant-updated"]
    assert sorted(f["participant"]["participant_id"] for f in updates) == sorted(p.people)
    assert {f["participant"]["status"] for f in updates} == {"paused"}
    created = frames_to(sent, mods(p.room))[0]
    assert sum(len(r["members"]) for r in created["rooms"]) == 5
    assert_consistent(p.room)


def test_create_and_invite_that_cannot_fit_creates_nothing(sent):
    p = party(n=7)
    create(p, rooms=8)
    # 7 people in rooms of 2 need 4 rooms; only 2 more are allowed.
    refused(
        sent,
        p.room,
        BreakoutLimit,
        bs.breakout_rooms_create_and_invite,
        parent=p.room,
        actor=p.mod,
        participants=2,
        max_rooms=4,
    )
    bs.breakout_rooms_destroy_all(parent=p.room, actor=p.mod)
    # ... and they do not fit in the 3 rooms the moderator allowed.
    refused(
        sent,
        p.room,
        BreakoutInvalidSize,
        bs.breakout_rooms_create_and_invite,
        parent=p.room,
        actor=p.mod,
        participants=2,
        max_rooms=3,
        force_join=True,
    )


def test_create_and_invite_leaves_people_already_in_a_breakout_where_they_are(sent):
    p = party(n=4)
    [room] = create(p, rooms=1, capacity=2)
    bs.breakout_invite(
        parent=p.room, actor=p.mod, room_id=str(room.pk), clients=["p0"], force_join=True
    )
    _, assignments = bs.breakout_rooms_create_and_invite(
        parent=p.room, actor=p.mod, participants=3, max_rooms=1, force_join=True
    )
    assert sorted(next(iter(assignments.values()))) == ["p1", "p2", "p3"]
    assert membership(p.room)["p0"] == str(room.pk)


# Invite, join, reject, leave -----------------------------------------------------------------


def test_join_needs_an_invitation_and_is_announced(sent):
    p = party()
    [room] = create(p, rooms=1, capacity=3)
    rid = str(room.pk)
    refused(sent, p.room, NotInvited, bs.breakout_join, parent=p.room, participant_id="p0",
            room_id=rid)  # fmt: skip
    inv = bs.breakout_invite(parent=p.room, actor=p.mod, room_id=rid, clients=["p0", "p1", "p0"])
    assert inv.clients == ["p0", "p1"]
    bs.breakout_join(parent=p.room, participant_id="p1", room_id=rid)
    sent.items.clear()
    bs.breakout_join(parent=p.room, participant_id="p0", room_id=rid)
    me = who(p.room, "p0")
    assert me.status == "paused" and str(me.breakout_id) == rid
    # The joiner: the room with its members, and its socket joins the room's group.
    [m] = sent.to(events.participant_group(p.room.pk, "p0"))
    assert m["add"] == [members(rid)] and m["breakout_id"] == rid
    [joined] = m["frames"]
    assert sorted(x["participant_id"] for x in joined["room"]["members"]) == ["p0", "p1"]
    # The room's members (but not the joiner itself).
    [to_room] = sent.to(members(rid))
    assert to_room["except_participant"] == "p0"
    assert to_room["frames"] == [
        {"type": "breakout-participant-joined", "participant": events.participant_payload(me)}
    ]
    # The parent's members see the status flip; moderators the new layout.
    assert frames_to(sent, members(p.room)) == [
        {"type": "participant-updated", "participant": events.participant_payload(me)}
    ]
    [layout] = frames_to(sent, mods(p.room))
    assert layout["type"] == "breakouts-updated"
    assert sorted(x["participant_id"] for x in layout["rooms"][0]["members"]) == ["p0", "p1"]


def test_invitations_survive_leave_and_clear_but_not_rejection(sent):
    p = party()
    [room] = create(p, rooms=1)
    rid = str(room.pk)
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=rid, clients=["p0", "p1"])
    bs.breakout_join(parent=p.room, participant_id="p0", room_id=rid)
    bs.breakout_leave(parent=p.room, participant_id="p0")
    bs.breakout_join(parent=p.room, participant_id="p0", room_id=rid)
    bs.breakout_rooms_clear_all(parent=p.room, actor=p.mod)
    bs.breakout_join(parent=p.room, participant_id="p0", room_id=rid)
    sent.items.clear()
    bs.breakout_reject(parent=p.room, participant_id="p1", room_id=rid)
    rejected, updated = frames_to(sent, mods(p.room))
    assert rejected == {"type": "breakout-invite-rejected", "room_id": rid, "participant_id": "p1"}
    # ...and the rooms again, so the dashboard shows the answer (issue 14).
    assert updated["type"] == "breakouts-updated"
    assert [(i["participant_id"], i["status"]) for i in updated["rooms"][0]["invitations"]] == [
        ("p0", "accepted"),
        ("p1", "rejected"),
    ]
    refused(sent, p.room, NotInvited, bs.breakout_join, parent=p.room, participant_id="p1",
            room_id=rid)  # fmt: skip
    refused(sent, p.room, NotInvited, bs.breakout_reject, parent=p.room, participant_id="p1",
            room_id=rid)  # fmt: skip


def test_moderators_may_visit_any_room_without_an_invitation(sent):
    p = party()
    [room] = create(p, rooms=1)
    bs.breakout_join(parent=p.room, participant_id="mod", room_id=str(room.pk), role="moderator")
    assert who(p.room, "mod").status == "paused"
    refused(sent, p.room, InvalidPermissions, bs.breakout_join, parent=p.room,
            participant_id="p0", room_id=str(room.pk), role="moderator")  # fmt: skip


def test_one_breakout_at_a_time(sent):
    p = party()
    a, b = create(p, rooms=2)
    for r in (a, b):
        bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(r.pk), clients=["p0"])
    bs.breakout_join(parent=p.room, participant_id="p0", room_id=str(a.pk))
    refused(sent, p.room, AlreadyInBreakout, bs.breakout_join, parent=p.room,
            participant_id="p0", room_id=str(b.pk))  # fmt: skip
    # Joining the room one is in is a harmless no-op.
    sent.items.clear()
    assert bs.breakout_join(parent=p.room, participant_id="p0", room_id=str(a.pk)) == a
    assert sent.items == []


def test_join_respects_capacity(sent):
    p = party()
    [room] = create(p, rooms=1, capacity=2)
    rid = str(room.pk)
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=rid, clients=["p0", "p1", "p2"])
    bs.breakout_join(parent=p.room, participant_id="p0", room_id=rid)
    bs.breakout_join(parent=p.room, participant_id="p1", room_id=rid)
    refused(sent, p.room, BreakoutFull, bs.breakout_join, parent=p.room, participant_id="p2",
            room_id=rid)  # fmt: skip
    bs.breakout_leave(parent=p.room, participant_id="p0")
    bs.breakout_join(parent=p.room, participant_id="p2", room_id=rid)


def test_unknown_rooms_and_participants(sent):
    p = party()
    other = party("other")
    [theirs] = create(other, rooms=1)
    [room] = create(p, rooms=1)
    for room_id in (str(theirs.pk), "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        refused(sent, p.room, BreakoutNotFound, bs.breakout_join, parent=p.room,
                participant_id="mod", room_id=room_id)  # fmt: skip
    refused(sent, p.room, BadRequest, bs.breakout_join, parent=p.room, participant_id="mod",
            room_id=7)  # fmt: skip
    # Inviting someone who is not present invites nobody.
    refused(sent, p.room, NotFound, bs.breakout_invite, parent=p.room, actor=p.mod,
            room_id=str(room.pk), clients=["p0", "ghost"])  # fmt: skip
    for clients in ([], "p0", [1], [""]):
        refused(sent, p.room, BadRequest, bs.breakout_invite, parent=p.room, actor=p.mod,
                room_id=str(room.pk), clients=clients)  # fmt: skip


def test_leave_returns_to_the_parent_as_active(sent):
    p = party()
    [room] = create(p, rooms=1)
    rid = str(room.pk)
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=rid, clients=["p0", "p1"],
                       force_join=True)  # fmt: skip
    sent.items.clear()
    assert str(bs.breakout_leave(parent=p.room, participant_id="p0")) == rid
    me = who(p.room, "p0")
    assert me.status == "active" and me.breakout_id is None
    [m] = sent.to(events.participant_group(p.room.pk, "p0"))
    assert m["frames"] == [{"type": "breakout-left", "room_id": rid, "reason": "left"}]
    assert m["discard"] == [members(rid)] and m["breakout_id"] is None
    [to_room] = sent.to(members(rid))
    assert to_room["frames"][0]["type"] == "breakout-participant-left"
    assert frames_to(sent, members(p.room)) == [
        {"type": "participant-updated", "participant": events.participant_payload(me)}
    ]
    refused(sent, p.room, NotInBreakout, bs.breakout_leave, parent=p.room, participant_id="p0")


def test_force_invite_must_fit_entirely(sent):
    p = party()
    [room] = create(p, rooms=1, capacity=2)
    refused(sent, p.room, BreakoutFull, bs.breakout_invite, parent=p.room, actor=p.mod,
            room_id=str(room.pk), clients=["p0", "p1", "p2"], force_join=True)  # fmt: skip


# Clear, destroy ------------------------------------------------------------------------------


def _fill(p: Party) -> list[Room]:
    rooms, _ = bs.breakout_rooms_create_and_invite(
        parent=p.room, actor=p.mod, participants=4, max_rooms=2, force_join=True
    )
    assert len(rooms) == 2
    bs.breakout_join(parent=p.room, participant_id="mod", room_id=str(rooms[0].pk))
    return rooms


def test_clear_all_returns_everyone_and_keeps_the_rooms(sent):
    p = party(n=6)
    rooms = _fill(p)
    sent.items.clear()
    done = bs.breakout_rooms_clear_all(parent=p.room, actor=p.mod)
    assert len(done.returned) == 7 and done.rooms == 2
    assert all(v is None for v in membership(p.room).values())
    assert set(Participant.objects.values_list("status", flat=True)) == {"active"}
    for pid in [*p.people, "mod"]:
        [frame] = to_person(sent, p.room, pid)
        assert frame["type"] == "breakout-left" and frame["reason"] == "cleared"
    assert [r.pk for r in Room.objects.filter(parent=p.room)] == [r.pk for r in rooms]
    [layout] = frames_to(sent, mods(p.room))
    assert [r["members"] for r in layout["rooms"]] == [[], []]
    # Rooms can be joined again.
    pid = p.people[0]
    again = str(BreakoutInvitation.objects.get(participant_id=pid).breakout_id)
    bs.breakout_join(parent=p.room, participant_id=pid, room_id=again)
    assert membership(p.room)[pid] == again
    assert_consistent(p.room)


def test_destroy_all_returns_everyone_deletes_rooms_and_resumes_and_unmutes(sent):
    p = party(n=6)
    _fill(p)
    services.room_set_state(room=p.room, actor=p.mod, paused=True, audio_muted=True,
                            video_muted=True)  # fmt: skip
    sent.items.clear()
    done = bs.breakout_rooms_destroy_all(parent=p.room, actor=p.mod)
    assert len(done.returned) == 7 and done.rooms == 2
    assert not Room.objects.filter(parent=p.room).exists()
    assert not BreakoutInvitation.objects.exists()
    room = p.refresh()
    assert (room.paused, room.audio_muted, room.video_muted) == (False, False, False)
    assert all(v is None for v in membership(p.room).values())
    for pid in [*p.people, "mod"]:
        [frame] = to_person(sent, p.room, pid)
        assert frame == {"type": "breakout-left", "room_id": frame["room_id"],
                         "reason": "destroyed"}  # fmt: skip
    to_parent = frames_to(sent, members(p.room))
    assert [f["type"] for f in to_parent] == ["participant-updated"] * 7 + ["room-updated"]
    assert to_parent[-1]["room"]["paused"] is False
    assert to_parent[-1]["room"]["audio_muted"] is False
    assert frames_to(sent, mods(p.room)) == [{"type": "breakouts-updated", "rooms": []}]


def test_destroy_all_with_nothing_to_do_changes_nothing_it_need_not(sent):
    p = party()
    done = bs.breakout_rooms_destroy_all(parent=p.room, actor=p.mod)
    assert done.returned == [] and done.rooms == 0
    assert "room-updated" not in sent.types()


# Move, broadcast, help -----------------------------------------------------------------------


def test_move_between_rooms_and_back_respecting_capacity(sent):
    p = party()
    a, b = create(p, rooms=2, capacity=2)
    bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p0", room_id=str(a.pk))
    bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p1", room_id=str(b.pk))
    bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p2", room_id=str(b.pk))
    refused(sent, p.room, BreakoutFull, bs.breakout_move, parent=p.room, actor=p.mod,
            participant_id="p0", room_id=str(b.pk))  # fmt: skip
    sent.items.clear()
    bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p2", room_id=str(a.pk))
    assert membership(p.room)["p2"] == str(a.pk)
    msgs = sent.to(events.participant_group(p.room.pk, "p2"))
    assert [f["type"] for m in msgs for f in m["frames"]] == ["breakout-left", "breakout-joined"]
    assert msgs[0]["frames"][0] == {"type": "breakout-left", "room_id": str(b.pk),
                                    "reason": "moved"}  # fmt: skip
    assert msgs[0]["discard"] == [members(b.pk)] and msgs[1]["add"] == [members(a.pk)]
    assert frames_to(sent, members(b.pk))[0]["type"] == "breakout-participant-left"
    assert frames_to(sent, members(a.pk))[0]["type"] == "breakout-participant-joined"
    sent.items.clear()
    bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p2", room_id=None)
    assert who(p.room, "p2").status == "active"
    assert to_person(sent, p.room, "p2") == [
        {"type": "breakout-left", "room_id": str(a.pk), "reason": "moved"}
    ]
    refused(sent, p.room, NotInBreakout, bs.breakout_move, parent=p.room, actor=p.mod,
            participant_id="p2", room_id=None)  # fmt: skip
    refused(sent, p.room, NotFound, bs.breakout_move, parent=p.room, actor=p.mod,
            participant_id="nobody", room_id=None)  # fmt: skip
    assert_consistent(p.room)


def test_broadcast_reaches_every_breakout_and_only_them(sent):
    p = party()
    a, b = create(p, rooms=2)
    sent.items.clear()
    assert bs.breakout_broadcast(parent=p.room, actor=p.mod, text="Two minutes left") == 2
    frame = {"type": "breakout-message", "text": "Two minutes left", "by": "mod"}
    assert frames_to(sent, members(a.pk)) == [frame]
    assert frames_to(sent, members(b.pk)) == [frame]
    assert [g for g, _ in sent.items] == [members(a.pk), members(b.pk)]
    for text in ("", "   ", "x" * 1001, 5):
        refused(sent, p.room, BadRequest, bs.breakout_broadcast, parent=p.room, actor=p.mod,
                text=text)  # fmt: skip


def test_help_request_reaches_moderators(sent):
    p = party()
    [room] = create(p, rooms=1)
    bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p0", room_id=str(room.pk))
    sent.items.clear()
    h = bs.breakout_help(parent=p.room, participant_id="p0")
    assert frames_to(sent, mods(p.room)) == [
        {
            "type": "breakout-help-requested",
            "room_id": str(room.pk),
            "participant": events.participant_payload(who(p.room, "p0")),
            "id": str(h.id),
            "requested_at": events._ts(h.requested_at),
            "expires_at": events._ts(h.expires_at),
        }
    ]
    assert [g for g, _ in sent.items] == [mods(p.room)]
    refused(sent, p.room, NotInBreakout, bs.breakout_help, parent=p.room, participant_id="p1")


# Timers --------------------------------------------------------------------------------------


def test_timer_warns_once_a_minute_before_then_returns_everyone(sent):
    p = party()
    [room] = create(p, rooms=1, duration=300)
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(room.pk), clients=["p0", "p1"],
                       force_join=True)  # fmt: skip
    ends_at = Room.objects.get(pk=room.pk).ends_at
    sent.items.clear()
    clock.advance(200)
    services.sweep()
    assert sent.items == []
    clock.advance(45)  # 55 s left
    services.sweep()
    services.sweep()
    assert frames_to(sent, members(room.pk)) == [
        {"type": "breakout-ending", "room_id": str(room.pk), "ends_at": events._ts(ends_at)}
    ]
    sent.items.clear()
    clock.advance(56)
    services.sweep()
    services.sweep()
    for pid in ("p0", "p1"):
        assert to_person(sent, p.room, pid) == [
            {"type": "breakout-left", "room_id": str(room.pk), "reason": "timer"}
        ]
        assert who(p.room, pid).status == "active"
    kept = Room.objects.get(pk=room.pk)
    assert kept.ends_at is None and kept.ending_warned is False
    assert_consistent(p.room)


def test_extend_pushes_the_end_back_and_warns_again(sent):
    p = party()
    timed, untimed = create(p, rooms=1, duration=120) + create(p, rooms=1)
    bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p0", room_id=str(timed.pk))
    clock.advance(70)
    services.sweep()
    assert Room.objects.get(pk=timed.pk).ending_warned
    sent.items.clear()
    [extended] = bs.breakout_extend(parent=p.room, actor=p.mod, seconds=300)
    assert extended.pk == timed.pk and not extended.ending_warned
    assert frames_to(sent, members(timed.pk)) == [
        {"type": "breakout-extended", "room_id": str(timed.pk),
         "ends_at": events._ts(extended.ends_at)}
    ]  # fmt: skip
    clock.advance(60)
    services.sweep()
    assert who(p.room, "p0").status == "paused"  # the old end passed; still there
    clock.advance(250)  # 40 s left
    services.sweep()
    assert "breakout-ending" in sent.types(members(timed.pk))
    refused(sent, p.room, BadRequest, bs.breakout_extend, parent=p.room, actor=p.mod,
            room_id=str(untimed.pk), seconds=60)  # fmt: skip
    for seconds in (0, -5, 14_401, "60"):
        refused(sent, p.room, BadRequest, bs.breakout_extend, parent=p.room, actor=p.mod,
                seconds=seconds)  # fmt: skip


# The lobby's side ----------------------------------------------------------------------------


def test_leaving_the_whole_room_from_a_breakout_tells_that_breakout(sent):
    p = party()
    [room] = create(p, rooms=1)
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(room.pk), clients=["p0", "p1"],
                       force_join=True)  # fmt: skip
    sent.items.clear()
    services.participant_leave(room=p.room, participant_id="p0")
    gone = who(p.room, "p0")
    assert gone.status == "left" and gone.breakout_id is None
    [m] = sent.to(members(room.pk))
    assert m["frames"][0]["type"] == "breakout-participant-left"
    [layout] = frames_to(sent, mods(p.room))
    assert [x["participant_id"] for x in layout["rooms"][0]["members"]] == ["p1"]
    assert_consistent(p.room)


def test_a_fresh_rejoin_starts_in_the_parent_but_a_resume_keeps_the_breakout(sent):
    p = party()
    [room] = create(p, rooms=1)
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(room.pk), clients=["p0", "p1"],
                       force_join=True)  # fmt: skip
    again = present(p.room, "p0")
    assert again.status == "active" and again.breakout_id is None
    assert "breakout-participant-left" in sent.types(members(room.pk))
    # With the resume key a reconnecting socket is still in its breakout.
    p1 = who(p.room, "p1")
    p1.resume_hash = services.hash_secret("k1")
    p1.save(update_fields=["resume_hash"])
    plan = services.join_plan(room_name=p.room.name, token=None, resume="k1")
    resumed = services.participant_join(plan=plan, conn=conn())
    assert str(resumed.participant.breakout_id) == str(room.pk)
    assert resumed.participant.status == "paused"
    assert resumed.breakouts[0]["members"][0]["participant_id"] == "p1"
    assert_consistent(p.room)


def test_create_and_invite_costs_the_same_queries_for_3_or_11_people(sent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for n, name in ((3, "small"), (11, "large")):
        p = party(name, n=n)
        with CaptureQueriesContext(connection) as ctx:
            bs.breakout_rooms_create_and_invite(
                parent=p.room, actor=p.mod, participants=11, max_rooms=1, force_join=True
            )
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
    # 20 for the breakout work, plus the media computation after commit (lobby/media: lock the
    # parent, read its rooms and people, store the publisher slots and the sequence number).
    assert counts[0] <= 20 + 6, counts
