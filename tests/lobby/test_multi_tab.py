"""A moderator may be present from several tabs and devices at once; guests keep one seat.

The presence is one row; each moderator socket is a ``ModeratorSocket``. Closing one tab leaves
the others live and the moderator present; the presence disconnects (and, after the grace
period, leaves) only when the last socket is gone — also when a process holding some of them
dies.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from lobby import clock, events, services
from lobby.models import ModeratorSocket, Participant, ServerProcess
from tests.factories import conn, join, knock, make_room, make_token
from tests.lobby.helpers import adb, aroom, atoken, closed_with, count

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=60)


def replaced(sent) -> list[str]:
    return [
        g
        for g, m in sent.items
        for f in m.get("frames", [])
        if f.get("type") == "error" and f["error"]["code"] == "REPLACED"
    ]


@override_settings(ANTEROOM_DISCONNECT_GRACE=15)
def test_two_tabs_of_one_moderator_stay_live_until_the_last_closes(clinic, sent):
    owner = make_token(room="clinic", sub="dr", name="Dr Lee", owner=True)
    a, b = conn(), conn()
    join(clinic, owner, c=a)
    join(clinic, owner, c=b)
    assert replaced(sent) == []  # nobody was kicked
    assert Participant.objects.filter(participant_id="dr").count() == 1
    assert ModeratorSocket.objects.count() == 2

    services.participant_disconnected(
        room=clinic, participant_id="dr", connection_id=b.connection_id
    )
    p = Participant.objects.get(participant_id="dr")
    assert p.disconnected_at is None and p.connection_id == a.connection_id
    clock.advance(60)
    assert services.sweep().left == 0  # tab A is still open: present however long

    services.participant_disconnected(
        room=clinic, participant_id="dr", connection_id=a.connection_id
    )
    assert Participant.objects.get(participant_id="dr").disconnected_at is not None
    clock.advance(16)
    assert services.sweep().left == 1
    assert ModeratorSocket.objects.count() == 0


@override_settings(ANTEROOM_DISCONNECT_GRACE=15)
def test_closing_tabs_in_any_order_ends_the_presence_once(clinic, sent):
    owner = make_token(room="clinic", sub="dr", owner=True)
    a, b, c = conn(), conn(), conn()
    for x in (a, b, c):
        join(clinic, owner, c=x)
    # The row names the newest socket (c); close the others first, then it.
    for x in (c, a, b):
        services.participant_disconnected(
            room=clinic, participant_id="dr", connection_id=x.connection_id
        )
    assert Participant.objects.get(participant_id="dr").disconnected_at is not None


def test_a_moderator_tab_that_leaves_does_not_end_the_others(clinic, sent):
    owner = make_token(room="clinic", sub="dr", owner=True)
    a, b = conn(), conn()
    join(clinic, owner, c=a)
    join(clinic, owner, c=b)
    sent.items.clear()
    # The newest tab (the one the row names) leaves first: the older one keeps the presence.
    assert not services.participant_leave(
        room=clinic, participant_id="dr", connection_id=b.connection_id
    )
    assert Participant.objects.get(participant_id="dr").status == "active"
    assert "participant-left" not in sent.types()
    assert services.participant_leave(
        room=clinic, participant_id="dr", connection_id=a.connection_id
    )
    assert Participant.objects.get(participant_id="dr").status == "left"


def test_guests_keep_one_seat(clinic, sent):
    token = make_token(room="clinic", sub="m1", name="Mo")
    join(clinic, token, c=conn())
    join(clinic, token, c=conn())
    assert replaced(sent) == [events.participant_group(clinic.pk, "m1")]
    assert ModeratorSocket.objects.count() == 0


def test_a_dead_process_disconnects_only_moderators_with_no_tab_elsewhere(clinic, sent):
    now = clock.now()
    ServerProcess.objects.create(server_id="srv-dead", started_at=now, heartbeat_at=now)
    ServerProcess.objects.create(server_id="srv-live", started_at=now, heartbeat_at=now)
    both = make_token(room="clinic", sub="both", owner=True)
    only = make_token(room="clinic", sub="only", owner=True)
    live = conn(server="srv-live")
    join(clinic, both, c=live)
    join(clinic, both, c=conn(server="srv-dead"))  # the row now names the dead process
    join(clinic, only, c=conn(server="srv-dead"))
    clock.advance(30)
    services.server_heartbeat(server_id="srv-live")
    assert services.sweep().dead_servers == 1
    kept = Participant.objects.get(participant_id="both")
    assert kept.disconnected_at is None
    assert (kept.server_id, kept.connection_id) == ("srv-live", live.connection_id)
    assert Participant.objects.get(participant_id="only").disconnected_at is not None


def test_a_knock_reaches_every_tab_and_any_tab_decides(clinic, sent):
    owner = make_token(room="clinic", sub="dr", owner=True)
    join(clinic, owner, c=conn())
    join(clinic, owner, c=conn())
    w = knock(clinic, name="Pat")
    # One moderators' group: every tab of every moderator hears the knock.
    assert "entry-requested" in sent.types(events.mods_group(clinic.pk))
    dr = services.Actor.participant(Participant.objects.get(participant_id="dr"))
    d = services.entry_request_decide(
        room=clinic, request_id=w.request.id, actor=dr, outcome="admitted"
    )
    assert d.effective


# Over the socket ------------------------------------------------------------------------------


async def test_two_dashboard_sockets_with_one_owner_link_both_work(clients):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    owner = await atoken(sub="dr", name="Dr Lee", owner=True)
    first = await clients()
    await first.request("join", token=owner)
    await first.expect("joined")
    second = await clients()
    await second.request("join", token=owner)
    joined = await second.expect("joined")
    assert [p["participant_id"] for p in joined["participants"]] == ["dr"]
    guest = await clients(client=("10.0.0.9", 5000))
    await guest.send(type="join", name="Pat")
    await guest.expect("waiting")
    r1 = await first.expect("entry-requested")
    r2 = await second.expect("entry-requested")
    assert r1["request"]["id"] == r2["request"]["id"]
    # Closing the first tab leaves the second live and the moderator present.
    await first.close()
    ack = await second.request("admit", rid="a", request_id=r2["request"]["id"])
    assert ack["ok"] and ack["data"]["effective"] is True
    await guest.expect("joined")
    assert not [f for f in second.seen if f["type"] == "error"]
    p = await adb(Participant.objects.get)(participant_id="dr")
    assert p.disconnected_at is None and p.status == "active"
    assert await count(ModeratorSocket) == 1


async def test_a_guest_second_socket_still_replaces_the_first(clients):
    await aroom(name="clinic")
    token = await atoken(sub="m1", name="Member")
    first = await clients()
    await first.request("join", token=token)
    second = await clients()
    await second.request("join", token=token)
    assert (await first.expect("error"))["error"]["code"] == "REPLACED"
    assert await closed_with(first) == 4409
