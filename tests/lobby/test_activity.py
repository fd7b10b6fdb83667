"""The moderators' activity list: every outcome of a room, who, what, when, by whom — decided or
not — from the audit trail, and live as ``activity`` frames to the room's moderators only."""

from __future__ import annotations

import pytest
from django.test import override_settings

from lobby import activity, clock, events, services
from lobby.models import Participant
from tests.factories import conn, join, knock, make_room, make_token, moderator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=60)


def live(sent, room) -> list[dict]:
    return [
        item
        for m in sent.to(events.activity_group(room.pk))
        for f in m["frames"]
        for item in f["items"]
    ]


def summary(items) -> list[tuple[str, str, str]]:
    return [(i["kind"], i["name"], i["by"]) for i in items]


@override_settings(ANTEROOM_DISCONNECT_GRACE=15)
def test_every_outcome_is_listed_newest_first_with_who_and_by_whom(clinic, sent):
    dr = moderator(clinic, sub="dr")
    a = knock(clinic, name="Ada Admitted")
    d = knock(clinic, name="Dan Denied")
    knock(clinic, name="Tim Timeout")
    c = knock(clinic, name="Cat Cancel")
    services.entry_request_decide(
        room=clinic, request_id=a.request.id, actor=dr, outcome="admitted"
    )
    services.entry_request_decide(
        room=clinic, request_id=d.request.id, actor=dr, outcome="denied", reason="Wrong day"
    )
    services.entry_request_cancel(room=clinic, request_id=c.request.id, reason="aborted")
    clock.advance(61)
    services.sweep()  # Tim times out: nobody decided
    ada = Participant.objects.get(name="Ada Admitted")
    services.participant_leave(room=clinic, participant_id=ada.participant_id)

    items = activity.recent(room=clinic)
    assert summary(items) == [
        ("left", "Ada Admitted", ada.participant_id),
        ("timed-out", "Tim Timeout", ""),
        ("canceled", "Cat Cancel", c.request.participant_id),
        ("denied", "Dan Denied", "dr"),
        ("admitted", "Ada Admitted", "dr"),
    ]
    assert items[3]["reason"] == "Wrong day"
    assert all(i["at"] and i["at"].endswith("Z") for i in items)
    # Live, the same items reached the moderators, oldest first, one frame per transaction.
    assert summary(live(sent, clinic)) == list(reversed(summary(items)))


@override_settings(ANTEROOM_DISCONNECT_GRACE=15)
def test_a_dropped_knock_and_a_lapsed_presence_are_listed(clinic, sent):
    c = conn()
    w = knock(clinic, name="Del Dropped", c=c)
    services.entry_request_disconnected(request_id=w.request.id, connection_id=c.connection_id)
    pc = conn()
    join(clinic, make_token(room="clinic", sub="p1", name="Pia Present"), c=pc)
    services.participant_disconnected(
        room=clinic, participant_id="p1", connection_id=pc.connection_id
    )
    clock.advance(16)
    services.sweep()
    kinds = {(i["kind"], i["name"], i["reason"]) for i in activity.recent(room=clinic)}
    assert kinds == {
        ("dropped", "Del Dropped", "disconnected"),
        ("left", "Pia Present", "disconnected"),
    }


def test_a_revoked_link_ends_the_presence_and_says_so(clinic, sent):
    token = make_token(room="clinic", sub="p2", name="Rex Revoked")
    join(clinic, token)
    from lobby.tokens import verify_token

    jti = verify_token(token).jti
    assert jti is not None
    services.token_revoke(jti=jti, by="api:ops")
    [item] = activity.recent(room=clinic)
    assert (item["kind"], item["name"], item["reason"], item["by"]) == (
        "left",
        "Rex Revoked",
        "revoked",
        "api:ops",
    )


def test_admit_all_is_one_frame_with_every_guest(clinic, sent):
    dr = moderator(clinic)
    for n in range(3):
        knock(clinic, name=f"G{n}")
    sent.items.clear()
    assert services.entry_requests_decide_all(room=clinic, actor=dr, outcome="admitted") == 3
    [message] = sent.to(events.activity_group(clinic.pk))
    [frame] = message["frames"]
    assert [i["name"] for i in frame["items"]] == ["G0", "G1", "G2"]


def test_activity_goes_to_the_activity_group_only(clinic, sent):
    dr = moderator(clinic)
    w = knock(clinic, name="Pat")
    sent.items.clear()
    services.entry_request_decide(room=clinic, request_id=w.request.id, actor=dr, outcome="denied")
    groups = {g for g, m in sent.items for f in m.get("frames", []) if f["type"] == "activity"}
    assert groups == {events.activity_group(clinic.pk)}


def test_the_list_is_per_room_and_bounded(clinic, sent):
    other = make_room("other", privacy="private", enable_knocking=True)
    dr = moderator(clinic)
    for n in range(activity.DEFAULT_LIMIT + 3):
        w = knock(clinic, name=f"G{n}")
        services.entry_request_decide(
            room=clinic, request_id=w.request.id, actor=dr, outcome="denied"
        )
    knock(other, name="Elsewhere")
    items = activity.recent(room=clinic)
    assert len(items) == activity.DEFAULT_LIMIT
    assert items[0]["name"] == f"G{activity.DEFAULT_LIMIT + 2}"
    assert activity.recent(room=other) == []


# Over the socket ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_moderators_get_the_list_on_join_and_each_outcome_live_guests_never(clients):
    from channels.db import database_sync_to_async as adb

    await adb(make_room)("clinic", privacy="private", enable_knocking=True)
    owner = await adb(make_token)(room="clinic", sub="host", name="Dr H", owner=True)
    member = await adb(make_token)(room="clinic", sub="m1", name="Mo")
    host = await clients()
    joined = (await host.request("join", token=owner)) and await host.expect("joined")
    assert joined["activity"] == []
    mo = await clients()
    await mo.request("join", token=member)
    mo_joined = await mo.expect("joined")
    assert "activity" not in mo_joined  # the list is for moderators
    waiting = await clients()
    await waiting.send(type="join", name="Wen Waiting")
    await waiting.expect("waiting")
    guest = await clients()
    await guest.send(type="join", name="Cy Cancel")
    await guest.expect("waiting")
    await guest.request("cancel", rid=5)

    frame = await host.expect("activity")
    assert [(i["kind"], i["name"]) for i in frame["items"]] == [("canceled", "Cy Cancel")]
    await mo.request("leave", rid=6)
    frame = await host.expect("activity")
    assert [(i["kind"], i["name"], i["reason"]) for i in frame["items"]] == [("left", "Mo", "left")]
    # A reload shows the same list.
    again = await clients()
    await again.request("join", token=owner)
    assert [i["name"] for i in (await again.expect("joined"))["activity"]] == ["Mo", "Cy Cancel"]
    # Neither the waiting guest nor anyone but moderators heard any of it.
    while not await waiting.nothing():
        await waiting.recv()
    assert {f["type"] for f in waiting.seen} == {"access-state", "waiting", "queue-position"}
