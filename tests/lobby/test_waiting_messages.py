"""Host → waiting room: a room message for everyone waiting (optionally more time), a message to
one waiting guest. Guests learn the text and nothing else about the room."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lobby import events, services
from lobby.errors import BadRequest, InvalidPermissions, RequestNotFound
from lobby.models import EntryRequest, Room
from lobby.services import moderation
from tests.factories import join, knock, make_room, make_token, moderator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=60)


def frames(sent, group):
    return [f for m in sent.to(group) for f in m.get("frames", [])]


def test_a_room_message_reaches_everyone_waiting_and_can_add_time(clinic, sent):
    dr = moderator(clinic)
    a, b = knock(clinic, name="A"), knock(clinic, name="B")
    before = {r.pk: r.expires_at for r in EntryRequest.objects.all()}
    sent.items.clear()
    room, moved = moderation.lobby_message_set(
        room=clinic, actor=dr, text="  Dr Lee is running\n10 minutes late ", extend_minutes=10
    )
    assert (room.lobby_message, moved) == ("Dr Lee is running 10 minutes late", 2)
    assert Room.objects.get(pk=clinic.pk).lobby_message == room.lobby_message
    said = {"type": "lobby-message", "text": "Dr Lee is running 10 minutes late"}
    assert frames(sent, events.lobby_group(clinic.pk)) == [said]
    assert said in frames(sent, events.mods_group(clinic.pk))
    for w in (a, b):
        r = EntryRequest.objects.get(pk=w.request.id)
        assert r.expires_at == before[r.pk] + timedelta(minutes=10)
        assert frames(sent, events.request_group(r.id)) == [
            {
                "type": "deadline-extended",
                "expires_at": events.guest_request_payload(r)["expires_at"],
            }
        ]
    # Members of the room are not told: it is for the waiting room.
    assert frames(sent, events.members_group(clinic.pk)) == []
    # Clearing it.
    room, moved = moderation.lobby_message_set(room=clinic, actor=dr, text="")
    assert (room.lobby_message, moved) == ("", 0)


def test_a_message_to_one_waiting_guest_goes_to_that_guest_only(clinic, sent):
    dr = moderator(clinic)
    a, b = knock(clinic, name="A"), knock(clinic, name="B")
    sent.items.clear()
    r = moderation.entry_request_message(
        room=clinic, actor=dr, request_id=a.request.id, text="Your forms are ready"
    )
    assert r.host_message == "Your forms are ready"
    assert sent.items == [
        (
            events.request_group(a.request.id),
            {
                "type": "anteroom.event",
                "frames": [{"type": "host-message", "text": "Your forms are ready"}],
                "action": "",
                "to_waiting": True,  # a waiting socket relays only these
            },
        )
    ]
    assert EntryRequest.objects.get(pk=b.request.id).host_message == ""


def test_refusals_change_nothing(clinic, sent):
    w = knock(clinic, name="A")
    member = join(clinic, make_token(room="clinic", sub="m1", name="Mo"))
    not_mod = services.Actor.participant(member.participant)
    with pytest.raises(InvalidPermissions):
        moderation.lobby_message_set(room=clinic, actor=not_mod, text="hi")
    with pytest.raises(InvalidPermissions):
        moderation.entry_request_message(
            room=clinic, actor=not_mod, request_id=w.request.id, text="hi"
        )
    dr = moderator(clinic)
    with pytest.raises(BadRequest):
        moderation.lobby_message_set(room=clinic, actor=dr, text="x" * 301)
    with pytest.raises(BadRequest):
        moderation.lobby_message_set(room=clinic, actor=dr, text="late", extend_minutes=61)
    with pytest.raises(BadRequest):
        moderation.entry_request_message(room=clinic, actor=dr, request_id=w.request.id, text="   ")
    services.entry_request_cancel(room=clinic, request_id=w.request.id)
    with pytest.raises(RequestNotFound):
        moderation.entry_request_message(
            room=clinic, actor=dr, request_id=w.request.id, text="hello?"
        )
    assert Room.objects.get(pk=clinic.pk).lobby_message == ""
    assert EntryRequest.objects.get(pk=w.request.id).host_message == ""


async def test_a_waiting_guest_hears_the_words_and_nothing_else(clients):
    from tests.lobby.helpers import aroom, atoken

    await aroom(name="clinic", privacy="private", enable_knocking=True)
    host = await clients()
    await host.request("join", token=await atoken(sub="host", name="Dr Lee", owner=True))
    await host.expect("joined")
    ack = await host.request("lobby-message", rid="m", text="Running 10 minutes late")
    assert ack["ok"] and ack["data"] == {"text": "Running 10 minutes late", "extended": 0}
    guest = await clients(client=("10.0.0.5", 4000))
    await guest.send(type="join", name="Pat", metadata={"note": "checkup"})
    waiting = await guest.expect("waiting")
    # A late knock is told the current message at once.
    assert (await guest.expect("lobby-message"))["text"] == "Running 10 minutes late"
    knock_frame = await host.expect("entry-requested")
    rid = knock_frame["request"]["id"]
    ack = await host.request("entry-message", rid="e", request_id=rid, text="Forms at the desk")
    assert ack["ok"], ack
    assert (await guest.expect("host-message"))["text"] == "Forms at the desk"
    ack = await host.request("lobby-message", rid="x", text="Now 15 minutes", extend_minutes=5)
    assert ack["data"]["extended"] == 1
    assert (await guest.expect("lobby-message"))["text"] == "Now 15 minutes"
    later = await guest.expect("deadline-extended")
    assert later["expires_at"] > waiting["request"]["expires_at"]
    # Meanwhile the room is busy: someone joins, the room pauses. The guest hears none of it.
    member = await clients()
    await member.request("join", token=await atoken(sub="m1", name="Mo"))
    await host.request("room-pause", rid="p")
    while not await guest.nothing(0.4):
        await guest.recv()
    heard = {f["type"] for f in guest.seen}
    assert heard <= {
        "access-state",
        "waiting",
        "queue-position",
        "lobby-message",
        "host-message",
        "deadline-extended",
    }, heard
    texts = [str(f) for f in guest.seen]
    # No name or id of anyone in the room (the host "Dr Lee"/"host", the member "Mo"/"m1").
    assert not [t for t in texts if any(x in t for x in ("Dr Lee", "'host'", "'Mo'", "'m1'"))]
    # A reload (resume) shows both messages again.
    again = await clients(client=("10.0.0.5", 4001))
    await again.send(type="join", resume=waiting["resume"])
    await again.expect("waiting")
    assert (await again.expect("lobby-message"))["text"] == "Now 15 minutes"
    assert (await again.expect("host-message"))["text"] == "Forms at the desk"


@pytest.mark.parametrize(
    "fields",
    [
        {"text": 5},
        {"text": "x" * 301},
        {"text": "late", "extend_minutes": 61},
        {"text": "late", "extend_minutes": True},
        {"text": "late", "other": 1},
        {},
    ],
)
async def test_bad_room_messages_are_refused(clients, fields):
    from tests.lobby.helpers import adb, aroom, atoken

    await aroom(name="clinic", privacy="private", enable_knocking=True)
    host = await clients()
    await host.request("join", token=await atoken(sub="host", owner=True))
    ack = await host.request("lobby-message", rid="m", **fields)
    assert ack["ok"] is False and ack["error"]["code"] == "BAD_REQUEST", ack
    assert (await adb(Room.objects.get)(name="clinic")).lobby_message == ""
