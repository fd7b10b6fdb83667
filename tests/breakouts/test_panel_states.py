"""What the host sees of each breakout room (issue 14 item 7): its invitations by answer, and
help requests answered by joining the asker's room ("Join room N"), which the dashboard
lists until they end - answered, or cleared when the breakout rooms or the room close."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as HttpClient

from breakouts import services as bs
from breakouts.models import HelpRequest
from breakouts.selectors import breakout_invitations
from lobby import services
from lobby.errors import (
    AnteroomError,
    BreakoutFull,
    HelpRequestNotFound,
    InvalidPermissions,
    NotFound,
)
from lobby.models import AuditEvent, Participant, Room
from tests.factories import make_token

from .helpers import Party, frames_to, members, mods, party, to_person, who

pytestmark = pytest.mark.django_db(transaction=True)


def two_rooms(p: Party, capacity: int = 3) -> tuple[Room, Room]:
    r1, r2 = bs.breakout_rooms_create(
        parent=p.room, actor=p.mod, participants=capacity, max_rooms=2
    )
    return r1, r2


def answers(p: Party) -> dict[int | None, list[tuple[str, str]]]:
    """room number → [(participant id, status)] as the selector reports them."""
    numbers = {str(r.pk): r.number for r in Room.objects.filter(parent=p.room)}
    return {
        numbers[room_id]: [(i["participant_id"], i["status"]) for i in rows]
        for room_id, rows in breakout_invitations(parent=p.room).items()
    }


def last_rooms_to_mods(sent: Any, p: Party) -> list[dict[str, Any]]:
    updates = [f for f in frames_to(sent, mods(p.room)) if f["type"] == "breakouts-updated"]
    assert updates, "moderators heard no breakouts-updated"
    return updates[-1]["rooms"]


def invitations_in(rooms: list[dict[str, Any]]) -> dict[int, list[tuple[str, str | None, str]]]:
    return {
        b["number"]: [(i["participant_id"], i["name"], i["status"]) for i in b["invitations"]]
        for b in rooms
    }


# Invitations, by answer ---------------------------------------------------------------------


def test_the_host_sees_pending_accepted_and_declined_invitations_of_each_room(sent):
    p = party(n=4)
    r1, r2 = two_rooms(p)
    sent.items.clear()
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(r1.pk), clients=["p0", "p1"])
    # An invitation alone moves nobody, but the dashboard hears of it.
    assert invitations_in(last_rooms_to_mods(sent, p)) == {
        1: [("p0", "P0", "pending"), ("p1", "P1", "pending")],
        2: [],
    }
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(r2.pk), clients=["p2"])
    bs.breakout_join(parent=p.room, participant_id="p0", room_id=str(r1.pk))
    sent.items.clear()
    bs.breakout_reject(parent=p.room, participant_id="p1", room_id=str(r1.pk))
    assert invitations_in(last_rooms_to_mods(sent, p)) == {
        1: [("p0", "P0", "accepted"), ("p1", "P1", "rejected")],
        2: [("p2", "P2", "pending")],
    }
    # A forced move is an accepted invitation too.
    bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p3", room_id=str(r2.pk))
    assert answers(p) == {
        1: [("p0", "accepted"), ("p1", "rejected")],
        2: [("p2", "pending"), ("p3", "accepted")],
    }


def test_a_declined_invitation_made_again_is_pending_again():
    p = party(n=2)
    r1, _ = two_rooms(p)
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(r1.pk), clients=["p0"])
    bs.breakout_reject(parent=p.room, participant_id="p0", room_id=str(r1.pk))
    assert answers(p) == {1: [("p0", "rejected")]}
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(r1.pk), clients=["p0"])
    assert answers(p) == {1: [("p0", "pending")]}


def test_invitations_reach_moderators_only(sent):
    """The invitee hears of its own invitation (SPEC's room shape, no invitation list); the
    parent's members hear nothing of it; a participant's snapshot carries no invitations."""
    p = party(n=2)
    r1, _ = two_rooms(p)
    sent.items.clear()
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(r1.pk), clients=["p0"])
    [invitation] = to_person(sent, p.room, "p0")
    assert invitation["type"] == "breakout-invitation"
    assert "invitations" not in invitation["room"]
    assert frames_to(sent, members(p.room)) == []
    everywhere = [f for g, m in sent.items if g != mods(p.room) for f in m.get("frames", [])]
    assert all("invitations" not in str(f) for f in everywhere)
    guest_view = services.participant_join(
        plan=services.join_plan(
            room_name=p.room.name, token=make_token(room=p.room.name, sub="p1", name="P1")
        ),
        conn=services.Connection(server_id="srv", connection_id="c-p1"),
    )
    assert guest_view.breakouts and all("invitations" not in b for b in guest_view.breakouts)


def test_the_no_javascript_dashboard_shows_each_room_s_invitations():
    p = party(n=3)
    r1, _ = two_rooms(p)
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(r1.pk), clients=["p0", "p1"])
    bs.breakout_reject(parent=p.room, participant_id="p1", room_id=str(r1.pk))
    page = dashboard(p).get(f"/r/{p.room.name}/dashboard/").content.decode()
    card = page.split('data-breakout-id="' + str(r1.pk) + '"')[1].split("</li>")[0]
    assert "<dt>No answer yet</dt><dd>P0</dd>" in card
    assert "<dt>Declined</dt><dd>P1</dd>" in card
    assert "Accepted" not in card


# "Join room N" ------------------------------------------------------------------------------


def asking(p: Party, capacity: int = 3) -> tuple[Room, HelpRequest]:
    r1, _ = two_rooms(p, capacity)
    bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p0", room_id=str(r1.pk))
    bs.breakout_move(parent=p.room, actor=p.mod, participant_id="p1", room_id=str(r1.pk))
    return r1, bs.breakout_help(parent=p.room, participant_id="p0")


def test_joining_the_askers_room_answers_the_help_request(sent):
    p = party(n=3)
    room, h = asking(p)
    sent.items.clear()
    j = bs.breakout_help_join(parent=p.room, actor=p.mod, participant_id="p0")
    assert j.effective and j.room == room
    assert who(p.room, "mod").breakout_id == room.pk
    assert who(p.room, "mod").status == "paused"
    h.refresh_from_db()
    assert (h.status, h.resolved_by) == ("answered", "mod")
    resolved = {
        "type": "breakout-help-resolved",
        "id": str(h.id),
        "room_id": str(room.pk),
        "participant_id": "p0",
        "outcome": "answered",
        "by": "mod",
    }
    assert resolved in to_person(sent, p.room, "p0")  # the asker learns the host is coming
    assert resolved in frames_to(sent, mods(p.room))
    joined = [f for f in to_person(sent, p.room, "mod") if f["type"] == "breakout-joined"]
    assert [f["room"]["id"] for f in joined] == [str(room.pk)]
    # The room's members see the host arrive.
    arrivals = [
        f["participant"]["participant_id"]
        for f in frames_to(sent, members(room))
        if f["type"] == "breakout-participant-joined"
    ]
    assert arrivals == ["mod"]
    assert bs.breakout_help_join(parent=p.room, actor=p.mod, participant_id="p0").effective is False
    assert AuditEvent.objects.filter(action="breakout-help-join", subject="p0").count() == 1


def test_a_help_request_that_ended_moves_nobody(sent):
    p = party(n=3)
    _, h = asking(p)
    bs.breakout_leave(parent=p.room, participant_id="p0")  # cleared
    sent.items.clear()
    j = bs.breakout_help_join(parent=p.room, actor=p.mod, participant_id="p0")
    assert not j.effective and j.room is None
    assert who(p.room, "mod").breakout_id is None
    assert HelpRequest.objects.get(pk=h.pk).status == "cleared"
    assert sent.items == []


@pytest.mark.parametrize("case", ["participant", "never-asked", "not-connected", "full"])
def test_a_refused_join_changes_nothing(sent, case):
    p = party(n=3)
    _, h = asking(p, capacity=2 if case == "full" else 3)
    actor, pid = p.mod, "p0"
    error: type[AnteroomError] = BreakoutFull
    if case == "participant":
        actor, error = services.Actor.participant(who(p.room, "p2")), InvalidPermissions
    elif case == "never-asked":
        pid, error = "p2", HelpRequestNotFound
    elif case == "not-connected":
        # The dashboard without its live connection: staff with no presence in the room.
        actor, error = services.Actor(by="staff:ann", can_moderate=True), NotFound
    before = membership_and_help(p)
    sent.items.clear()
    with pytest.raises(error):
        bs.breakout_help_join(parent=p.room, actor=actor, participant_id=pid)
    assert membership_and_help(p) == before
    assert HelpRequest.objects.get(pk=h.pk).status == "pending"
    assert sent.items == []


def membership_and_help(p: Party) -> tuple[Any, ...]:
    return (
        sorted(
            Participant.objects.filter(room=p.room).values_list("participant_id", "breakout_id")
        ),
        sorted(HelpRequest.objects.values_list("participant_id", "status")),
    )


# Cleared when the room or the breakout rooms close, and kept across a reload ----------------


def dashboard(p: Party) -> HttpClient:
    http = HttpClient()
    session = http.session
    session[f"anteroom.moderator.{p.room.name}"] = make_token(
        room=p.room.name, sub="mod", owner=True
    )
    session.save()
    return http


def test_a_pending_request_is_on_every_reload_of_the_dashboard_until_it_ends():
    p = party(n=3)
    asking(p)
    http = dashboard(p)
    for _ in range(2):
        page = http.get(f"/r/{p.room.name}/dashboard/").content.decode()
        assert "P0</span> <span>asked for help in Room 1" in page
        assert 'class="join-help" data-key="join:p0" hidden>Join Room 1' in page
    bs.breakout_rooms_destroy_all(parent=p.room, actor=p.mod)
    page = http.get(f"/r/{p.room.name}/dashboard/").content.decode()
    assert "asked for help" not in page


@pytest.mark.parametrize("how", ["clear-all", "destroy-all", "timer", "room-deleted"])
def test_a_help_request_ends_when_its_breakout_or_room_closes(sent, how):
    from django.utils import timezone

    p = party(n=3)
    room, h = asking(p)
    if how == "clear-all":
        bs.breakout_rooms_clear_all(parent=p.room, actor=p.mod)
    elif how == "destroy-all":
        bs.breakout_rooms_destroy_all(parent=p.room, actor=p.mod)
    elif how == "timer":
        Room.objects.filter(pk=room.pk).update(ends_at=timezone.now())
        assert bs.breakouts_sweep(now=timezone.now()) >= 1
    else:
        services.room_delete(room=p.room, actor=p.mod)
    pending = HelpRequest.objects.filter(status="pending")
    assert not pending.exists()
    if how in ("clear-all", "timer"):
        assert HelpRequest.objects.get(pk=h.pk).status == "cleared"
    if how != "room-deleted":
        told = [f for f in frames_to(sent, mods(p.room)) if f["type"] == "breakout-help-resolved"]
        assert [f["outcome"] for f in told] == ["cleared"]


# Over the socket ----------------------------------------------------------------------------


async def test_over_the_socket_the_host_joins_the_room_and_hears_it(clients):
    """``breakout-help-join``: the ack carries the room with the host in it; the host's socket
    follows into the room's group (it hears the room's own events), the asker hears the host
    arrive and that its request was answered."""
    from channels.db import database_sync_to_async

    from tests.factories import make_room

    await database_sync_to_async(make_room)("help-join")
    mod = await clients("help-join")
    token = await database_sync_to_async(make_token)(room="help-join", sub="mod", owner=True)
    assert (await mod.request("join", rid="j", token=token))["ok"]
    p0 = await clients("help-join")
    t = await database_sync_to_async(make_token)(room="help-join", sub="p0", name="Pat")
    assert (await p0.request("join", rid="j", token=t))["ok"]
    created = await mod.request("breakout-create", rid=1, participants=3, max_rooms=1)
    [room] = created["data"]["rooms"]
    await mod.request("breakout-move", rid=2, participant_id="p0", room_id=room["id"])
    await p0.expect("breakout-joined")
    asked = await p0.request("breakout-help", rid="h")

    ack = await mod.request("breakout-help-join", rid=3, participant_id="p0")
    assert ack["ok"], ack
    data = ack["data"]
    assert (data["id"], data["outcome"], data["effective"]) == (
        asked["data"]["id"],
        "answered",
        True,
    )
    assert data["room"]["id"] == room["id"]
    assert sorted(m["participant_id"] for m in data["room"]["members"]) == ["mod", "p0"]
    assert (await mod.expect("breakout-joined"))["room"]["id"] == room["id"]
    arrived = await p0.expect("breakout-participant-joined")
    assert arrived["participant"]["participant_id"] == "mod"
    assert (await p0.expect("breakout-help-resolved"))["outcome"] == "answered"
    # In the room's group now: a broadcast to the breakout rooms reaches the host's socket too.
    await mod.request("breakout-broadcast", rid=4, text="Back in five")
    assert (await mod.expect("breakout-message"))["text"] == "Back in five"
    again = await mod.request("breakout-help-join", rid=5, participant_id="p0")
    assert again["data"]["effective"] is False and again["data"]["room"] is None
    refused = await p0.request("breakout-help-join", rid="x", participant_id="p0")
    assert refused["error"]["code"] == "INVALID_PERMISSIONS"


def test_a_participants_snapshot_names_the_members_of_its_own_breakout_room_only():
    """On (re)joining, ``joined.breakouts`` lists every room, but a participant sees members only
    of the room it is in; a moderator sees them all, with the invitations."""
    p = party(n=4)
    r1, r2 = two_rooms(p)
    for pid, r in (("p0", r1), ("p1", r1), ("p2", r2)):
        bs.breakout_move(parent=p.room, actor=p.mod, participant_id=pid, room_id=str(r.pk))

    def snapshot_of(pid: str) -> dict[int, list[str]]:
        me = who(p.room, pid)
        me.resume_hash = services.hash_secret(f"key-{pid}")
        me.save(update_fields=["resume_hash"])
        plan = services.join_plan(room_name=p.room.name, token=None, resume=f"key-{pid}")
        j = services.participant_join(plan=plan, conn=services.Connection("srv", f"c-{pid}"))
        assert all("invitations" in b for b in j.breakouts) == (pid == "mod")
        return {b["number"]: sorted(m["participant_id"] for m in b["members"]) for b in j.breakouts}

    assert snapshot_of("p0") == {1: ["p0", "p1"], 2: []}
    assert snapshot_of("p2") == {1: [], 2: ["p2"]}
    assert snapshot_of("p3") == {1: [], 2: []}  # in the main room: no members at all
    assert snapshot_of("mod") == {1: ["p0", "p1"], 2: ["p2"]}


def test_the_moderators_room_list_costs_four_queries_however_many_invitations(
    django_assert_num_queries,
):
    """Rooms, members, invitations, names: the dashboard and every breakouts-updated."""
    from breakouts.selectors import breakout_rooms_payload

    p = party(n=6)
    r1, r2 = two_rooms(p)
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(r1.pk), clients=p.people[:3])
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(r2.pk), clients=p.people[3:])
    with django_assert_num_queries(4):
        rooms = breakout_rooms_payload(parent=p.room, invitations=True)
    assert sum(len(b["invitations"]) for b in rooms) == 6
