"""Host controls on people: remove a participant, send one back to the waiting room (Zoom's
"Put in waiting room") — the events each audience gets, what is stored, the refusals, and
send-to-lobby racing an admission in real threads."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from lobby import activity, events, services
from lobby.errors import InvalidPermissions, ParticipantNotFound
from lobby.models import EntryRequest, Participant, Room
from lobby.services import moderation
from tests.factories import conn, join, knock, make_room, make_token, moderator
from tests.support.threads import at_once
from tests.support.ws import Client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=120)


def admitted(room, dr, name="Pat"):
    w = knock(room, name=name)
    services.entry_request_decide(room=room, request_id=w.request.id, actor=dr, outcome="admitted")
    return w


def frames(sent, group):
    return [f for m in sent.to(group) for f in m.get("frames", [])]


@dataclass
class Knocking:
    """Over real sockets: room ``clinic`` (private, knocking), its host joined and the guest
    Pat knocking from 10.0.0.5; the knock's resume key and request id."""

    room: Room
    host: Client
    guest: Client
    resume: str
    request_id: str


async def guest_knocking(clients) -> Knocking:
    from tests.lobby.helpers import aroom, atoken

    room = await aroom(name="clinic", privacy="private", enable_knocking=True)
    host = await clients()
    await host.request("join", token=await atoken(sub="host", name="Host", owner=True))
    await host.expect("joined")
    guest = await clients(client=("10.0.0.5", 4000))
    await guest.send(type="join", name="Pat")
    resume = (await guest.expect("waiting"))["resume"]
    request_id = (await host.expect("entry-requested"))["request"]["id"]
    return Knocking(room, host, guest, resume, request_id)


async def guest_admitted(clients) -> tuple[Knocking, str]:
    """:func:`guest_knocking`, then the host admits Pat (the key stays Pat's resume key):
    returns Pat's participant id too."""
    k = await guest_knocking(clients)
    await k.host.request("admit", rid="a1", request_id=k.request_id)
    me = (await k.guest.expect("joined"))["participant"]["participant_id"]
    return k, me


def test_remove_closes_their_socket_and_tells_the_room(clinic, sent):
    dr = moderator(clinic)
    w = admitted(clinic, dr)
    pid = w.request.participant_id
    sent.items.clear()
    p = moderation.participant_remove(room=clinic, actor=dr, participant_id=pid)
    assert p.status == "left"
    [m] = sent.to(events.participant_group(clinic.pk, pid))
    assert (m["action"], m["close_code"]) == ("close", 4403)
    assert m["frames"][0]["error"]["code"] == "PARTICIPANT_REMOVED"
    assert [f["type"] for f in frames(sent, events.members_group(clinic.pk))] == [
        "participant-left"
    ]
    [item] = activity.recent(room=clinic)[:1]
    assert (item["kind"], item["name"], item["by"]) == ("removed", "Pat", "dr")


def test_remove_refusals_change_nothing(clinic, sent):
    dr = moderator(clinic)
    w = admitted(clinic, dr)
    pid = w.request.participant_id
    member = join(clinic, make_token(room="clinic", sub="m1", name="Mo"))
    with pytest.raises(InvalidPermissions):
        moderation.participant_remove(
            room=clinic, actor=services.Actor.participant(member.participant), participant_id=pid
        )
    with pytest.raises(ParticipantNotFound):
        moderation.participant_remove(room=clinic, actor=dr, participant_id="nobody")
    with pytest.raises(InvalidPermissions):
        moderation.participant_remove(room=clinic, actor=dr, participant_id="dr")
    with pytest.raises(InvalidPermissions):
        moderation.participant_send_to_lobby(
            room=clinic, actor=services.Actor.participant(member.participant), participant_id=pid
        )
    assert Participant.objects.get(participant_id=pid).status == "active"
    assert Participant.objects.get(participant_id="dr").status == "active"
    assert not EntryRequest.objects.filter(status="pending").exists()


def test_send_to_lobby_makes_them_a_waiting_guest_again(clinic, sent):
    dr = moderator(clinic)
    first = admitted(clinic, dr, name="Pat Patient")
    pid = first.request.participant_id
    sent.items.clear()
    r = moderation.participant_send_to_lobby(room=clinic, actor=dr, participant_id=pid)

    assert (r.status, r.participant_id, r.name) == ("pending", pid, "Pat Patient")
    assert (r.expires_at - r.requested_at).total_seconds() == 120  # as long as the first knock
    assert Participant.objects.get(participant_id=pid).status == "left"
    # Moderators: the knock; members: the departure; the guest's socket: waiting, and nothing
    # about the room.
    mods = [f["type"] for f in frames(sent, events.mods_group(clinic.pk))]
    assert mods == ["entry-requested"]
    assert [f["type"] for f in frames(sent, events.members_group(clinic.pk))] == [
        "participant-left"
    ]
    [m] = sent.to(events.participant_group(clinic.pk, pid))
    assert m["action"] == "to-lobby" and m["request_id"] == str(r.id)
    assert (m["position"], m["waiting"]) == (1, 1)
    assert m["frames"] == [
        {
            "type": "waiting",
            "request": events.guest_request_payload(r),
            "resume": None,
            "reason": "sent-to-lobby",
        }
    ]
    [item] = activity.recent(room=clinic)[:1]
    assert (item["kind"], item["by"]) == ("sent-to-lobby", "dr")

    # The key the guest holds resumes this knock (a reload keeps the place in line) ...
    plan = services.join_plan(room_name="clinic", token=None, resume=first.resume)
    assert (plan.level, plan.request_id) == ("lobby", r.id)
    # ... and admitting it again is an ordinary admission.
    d = services.entry_request_decide(room=clinic, request_id=r.id, actor=dr, outcome="admitted")
    assert d.effective
    assert Participant.objects.get(participant_id=pid).status == "active"


def test_send_to_lobby_without_an_earlier_knock_uses_the_room_ttl(clinic, sent):
    dr = moderator(clinic)
    join(clinic, make_token(room="clinic", sub="direct", name="Dee"), c=conn())
    r = moderation.participant_send_to_lobby(room=clinic, actor=dr, participant_id="direct")
    assert (r.expires_at - r.requested_at).total_seconds() == clinic.knock_ttl


@pytest.mark.parametrize("round_", range(3))
def test_send_to_lobby_racing_an_admit_never_leaves_someone_both_in_and_waiting(
    clinic, sent, round_
):
    """Moderators admit a guest's knock while others send that guest back to the waiting room.
    Whatever the order, the guest ends either in the room with no knock pending, or waiting once
    (one pending knock) with no presence."""
    dr = moderator(clinic)
    w = knock(clinic, name="Rae Race")
    pid = w.request.participant_id

    def act(i: int):
        if i % 2 == 0:
            return services.entry_request_decide(
                room=clinic, request_id=w.request.id, actor=dr, outcome="admitted"
            ).effective
        try:
            return moderation.participant_send_to_lobby(room=clinic, actor=dr, participant_id=pid)
        except ParticipantNotFound:
            return "not-in-room"

    results = at_once(8, act)
    assert not [x for x in results if isinstance(x, BaseException)], results
    assert results.count(True) == 1  # admitted exactly once
    sent_back = [x for x in results if isinstance(x, EntryRequest)]
    assert len(sent_back) <= 1  # at most one send-to-lobby found them in the room
    present = Participant.objects.filter(participant_id=pid, status="active").exists()
    pending = EntryRequest.objects.filter(participant_id=pid, status="pending").count()
    assert (present, pending) in ((True, 0), (False, 1))
    assert present == (not sent_back)


# Over the socket ------------------------------------------------------------------------------


async def test_a_guest_sent_back_hears_nothing_more_until_admitted_again(clients):
    from tests.lobby.helpers import atoken

    k, me = await guest_admitted(clients)
    host, guest = k.host, k.guest

    ack = await host.request("participant-to-lobby", rid="l", participant_id=me)
    assert ack["ok"], ack
    back = await guest.expect("waiting")
    assert back["reason"] == "sent-to-lobby" and back["resume"] is None
    assert (await guest.expect("queue-position"))["position"] == 1
    knock2 = await host.expect("entry-requested")
    assert knock2["request"]["id"] == ack["data"]["request_id"]
    # While waiting again, room events do not reach the guest.
    await host.request("room-pause", rid="p")
    other = await clients()
    await other.request("join", token=await atoken(sub="m2", name="Mo"))
    n = len(guest.seen)
    while not await guest.nothing(0.4):
        await guest.recv()
    # Only its place in line (it may be re-sent when the lobby's queue broadcast arrives).
    assert {f["type"] for f in guest.seen[n:]} <= {"queue-position"}
    assert all(f["position"] == 1 for f in guest.seen[n:])
    # The guest may rename (moderators see it) and is admitted again like any knock.
    assert (await guest.request("update-name", rid="n", name="Pat P."))["ok"]
    assert (await host.expect("entry-updated"))["request"]["name"] == "Pat P."
    await host.request("admit", rid="a2", request_id=knock2["request"]["id"])
    again = await guest.expect("joined")
    assert again["room"]["paused"] is True


async def test_a_guest_sent_back_hears_no_room_frame_that_was_on_its_way(clients, monkeypatch):
    """Frames sent to the room while the socket was still leaving its groups (a slow Redis
    group_discard) were already queued for it; once it waits again they are not relayed."""
    from channels.layers import get_channel_layer

    k, me = await guest_admitted(clients)
    host, guest = k.host, k.guest

    layer = get_channel_layer()
    assert layer is not None
    group_discard = layer.group_discard

    async def slow_group_discard(group: str, channel: str) -> None:
        if group.startswith("members."):
            await asyncio.sleep(0.5)
        await group_discard(group, channel)

    monkeypatch.setattr(layer, "group_discard", slow_group_discard)
    assert (await host.request("participant-to-lobby", rid="l", participant_id=me))["ok"]
    assert (await host.request("room-pause", rid="p"))["ok"]  # while the guest leaves
    assert (await guest.expect("waiting"))["reason"] == "sent-to-lobby"
    n = len(guest.seen)
    while not await guest.nothing(0.8):
        await guest.recv()
    assert {f["type"] for f in guest.seen[n:]} <= {"queue-position"}


async def test_a_removed_participant_is_told_and_closed(clients):
    from tests.lobby.helpers import aroom, atoken, closed_with

    await aroom(name="clinic")
    host = await clients()
    await host.request("join", token=await atoken(sub="host", owner=True))
    member = await clients()
    await member.request("join", token=await atoken(sub="m1", name="Mo"))
    ack = await host.request("participant-remove", rid="r", participant_id="m1")
    assert ack["ok"] and ack["data"] == {"participant_id": "m1"}
    err = await member.expect("error")
    assert err["error"]["code"] == "PARTICIPANT_REMOVED"
    assert await closed_with(member) == 4403
    left = await host.expect("participant-left")
    assert left["participant"]["participant_id"] == "m1"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, "BAD_REQUEST"),
        ({"participant_id": 7}, "BAD_REQUEST"),
        ({"participant_id": ""}, "BAD_REQUEST"),
        ({"participant_id": "m1", "extra": 1}, "BAD_REQUEST"),
        ({"participant_id": "nobody"}, "PARTICIPANT_NOT_FOUND"),
    ],
)
async def test_bad_host_control_frames_are_refused_and_change_nothing(clients, fields, code):
    from tests.lobby.helpers import adb, aroom, atoken

    await aroom(name="clinic")
    host = await clients()
    await host.request("join", token=await atoken(sub="host", owner=True))
    member = await clients()
    await member.request("join", token=await atoken(sub="m1", name="Mo"))
    for kind in ("participant-remove", "participant-to-lobby"):
        ack = await host.request(kind, rid=kind, **fields)
        assert ack["ok"] is False and ack["error"]["code"] == code, ack
    p = await adb(Participant.objects.get)(participant_id="m1")
    assert p.status == "active"
    assert await adb(EntryRequest.objects.count)() == 0


# A resume racing a removal: join_plan reads the presence without the lock ---------------------


def test_a_resume_planned_before_a_removal_does_not_bring_the_participant_back(clinic, sent):
    from lobby.errors import JoinRaced

    dr = moderator(clinic)
    joined = join(clinic, make_token(room="clinic", sub="m1", name="Mo"))
    plan = services.join_plan(room_name="clinic", token=None, resume=joined.resume)
    assert plan.resume_participant is not None  # the presence, read before the removal
    moderation.participant_remove(room=clinic, actor=dr, participant_id="m1")
    sent.items.clear()
    with pytest.raises(JoinRaced):
        services.participant_join(plan=plan, conn=conn())
    p = Participant.objects.get(room=clinic, participant_id="m1")
    assert p.status == "left"  # still removed
    assert sent.items == []  # nobody heard of a join


def test_a_resume_planned_before_send_to_lobby_leaves_them_waiting(clinic, sent):
    from lobby.errors import JoinRaced

    dr = moderator(clinic)
    w = admitted(clinic, dr)
    pid = w.request.participant_id
    resumed = services.join_plan(room_name="clinic", token=None, resume=w.resume)
    assert resumed.level == "full"
    r = moderation.participant_send_to_lobby(room=clinic, actor=dr, participant_id=pid)
    with pytest.raises(JoinRaced):
        services.participant_join(plan=resumed, conn=conn())
    assert Participant.objects.get(room=clinic, participant_id=pid).status == "left"
    assert EntryRequest.objects.get(pk=r.pk).status == "pending"
    # Planned again, the same key resumes the knock: the guest waits for a moderator.
    again = services.join_plan(room_name="clinic", token=None, resume=w.resume)
    assert (again.level, again.request_id) == ("lobby", r.id)


async def test_a_socket_whose_resume_raced_a_send_to_lobby_waits_instead_of_entering(
    clients, monkeypatch
):
    """Over the socket: the guest reconnects with its resume key; the host sends it back to
    the waiting room between the join's plan and its lock. The socket plans again and waits."""
    from channels.db import database_sync_to_async

    k, me = await guest_admitted(clients)
    room, key = k.room, k.resume  # admitted, the guest keeps this key

    real_plan = services.join_plan
    dr = services.Actor(by="host", can_moderate=True, participant_id="host")

    raced: list[str] = []

    def plan_then_send_back(**kwargs):
        plan = real_plan(**kwargs)
        if kwargs.get("resume") == key and not raced:
            raced.append(plan.level)
            moderation.participant_send_to_lobby(room=room, actor=dr, participant_id=me)
        return plan

    monkeypatch.setattr(services, "join_plan", plan_then_send_back)
    again = await clients(client=("10.0.0.5", 4001))
    ack = await again.request("join", rid="j", resume=key)
    assert ack["ok"], ack
    assert raced == ["full"]  # it was planned as a resumed presence
    assert ack["data"]["level"] == "lobby"
    assert "joined" not in [f["type"] for f in again.seen]
    assert (await database_sync_to_async(Participant.objects.get)(participant_id=me)).status == (
        "left"
    )


async def test_socket_decisions_and_mutes_take_the_same_schema_as_rest(clients):
    """``deny`` with a reason REST refuses (over 100 characters), ``admit`` with a field the
    schema does not have and ``room-mute`` with an unknown field are refused over the socket
    too, and nothing changes."""
    from tests.lobby.helpers import count

    k = await guest_knocking(clients)
    host, request_id = k.host, k.request_id

    long = await host.request("deny", rid="d", request_id=request_id, reason="x" * 101)
    assert (long["ok"], long["error"]["code"]) == (False, "BAD_REQUEST"), long
    assert "reason" in long["error"]["message"], long
    extra = await host.request("admit", rid="a", request_id=request_id, outcome="denied")
    assert (extra["ok"], extra["error"]["code"]) == (False, "BAD_REQUEST"), extra
    assert extra["error"]["message"] == "Unknown fields are not accepted.", extra
    mute = await host.request("room-mute", rid="m", audio=True, everyone=True)
    assert (mute["ok"], mute["error"]["code"]) == (False, "BAD_REQUEST"), mute
    assert await count(EntryRequest, pk=request_id, status="pending") == 1
    assert await count(Room, name="clinic", audio_muted=False) == 1
    # and the valid ones still work
    ok = await host.request("room-mute", rid="m2", audio=True)
    assert ok["ok"] and ok["data"]["room"]["audio_muted"] is True
    done = await host.request("admit", rid="a2", request_id=request_id)
    assert done["ok"] and done["data"]["effective"] is True


def test_a_knock_resume_planned_before_its_admission_is_planned_again_not_timed_out(clinic):
    """The guest reconnects with its knock's resume key while a moderator admits it: the
    re-attach finds the knock decided and asks for a new plan (which enters) instead of
    answering ENTRY_TIMEOUT to an admitted guest."""
    from lobby.errors import JoinRaced

    dr = moderator(clinic)
    w = knock(clinic, name="Pat")
    plan = services.join_plan(room_name="clinic", token=None, resume=w.resume)
    assert plan.level == "lobby"
    services.entry_request_decide(
        room=clinic, request_id=w.request.id, actor=dr, outcome="admitted"
    )
    with pytest.raises(JoinRaced):
        services.entry_request_knock(plan=plan, conn=conn())
    again = services.join_plan(room_name="clinic", token=None, resume=w.resume)
    assert again.level == "full" and again.participant_id == w.request.participant_id


async def test_a_socket_resuming_a_knock_admitted_meanwhile_enters(clients, monkeypatch):
    k = await guest_knocking(clients)
    room, key, request_id = k.room, k.resume, k.request_id
    real_plan = services.join_plan
    dr = services.Actor(by="host", can_moderate=True, participant_id="host")
    raced: list[str] = []

    def plan_then_admit(**kwargs):
        plan = real_plan(**kwargs)
        if kwargs.get("resume") == key and not raced:
            raced.append(plan.level)
            services.entry_request_decide(
                room=room, request_id=request_id, actor=dr, outcome="admitted"
            )
        return plan

    monkeypatch.setattr(services, "join_plan", plan_then_admit)
    again = await clients(client=("10.0.0.5", 4001))
    ack = await again.request("join", rid="j", resume=key)
    assert raced == ["lobby"]
    assert ack["ok"] and ack["data"]["level"] == "full", ack
    assert "error" not in [f["type"] for f in again.seen]
