"""The waiting-lobby seed's examples, end to end over the WebSocket."""

from __future__ import annotations

import pytest

from lobby.models import EntryRequest, Participant
from tests.factories import forge, make_room, make_token

pytestmark = pytest.mark.django_db(transaction=True)


async def _room(**kw):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(make_room)(**kw)


async def _token(**kw):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(make_token)(**kw)


async def test_doctor_admits_patient(clients):
    await _room(name="clinic", privacy="private", enable_knocking=True)
    doctor_token = await _token(room="clinic", sub="dr-who", name="Dr Who", owner=True)
    doctor = await clients()
    ack = await doctor.request("join", token=doctor_token)
    assert ack["ok"] and ack["data"]["level"] == "full"
    joined = await doctor.expect("joined")
    assert joined["type"] == "joined" and joined["participant"]["role"] == "moderator"

    patient = await clients()
    await patient.send(type="join", name="Pat", metadata={"reason": "checkup"})
    waiting = await patient.expect("waiting")
    pos = await patient.expect("queue-position")
    assert pos["position"] == 1 and pos["waiting"] == 1

    knock = await doctor.expect("entry-requested")
    assert knock["request"]["name"] == "Pat"
    assert knock["request"]["metadata"] == {"reason": "checkup"}
    assert knock["request"]["id"] == waiting["request"]["id"]

    ack = await doctor.request("admit", rid="a1", request_id=knock["request"]["id"])
    assert ack["data"] == {
        "request_id": knock["request"]["id"],
        "outcome": "admitted",
        "effective": True,
    }
    resolved = await doctor.expect("entry-resolved")
    assert resolved["by"] == "dr-who" and resolved["outcome"] == "admitted"

    admitted = await patient.expect("joined")
    assert admitted["participant"]["name"] == "Pat"
    names = {p["name"] for p in admitted["participants"]}
    assert names == {"Dr Who", "Pat"}
    joined_evt = await doctor.expect("participant-joined")
    assert joined_evt["participant"]["name"] == "Pat"
    # The admitted patient now hears room events.
    await doctor.request("room-pause", rid=2)
    upd = await patient.expect("room-updated")
    assert upd["room"]["paused"] is True


async def test_waiting_guest_learns_nothing_about_the_room(clients):
    await _room(name="clinic", privacy="private", enable_knocking=True)
    owner_token = await _token(room="clinic", sub="host", owner=True)
    host = await clients()
    await host.request("join", token=owner_token)
    guest = await clients()
    await guest.send(type="join", name="Nosy")
    await guest.expect("waiting")
    await host.expect("entry-requested")
    # Room activity while the guest waits: another participant joins, the room is muted.
    member_token = await _token(room="clinic", sub="m1", name="Member")
    member = await clients()
    await member.request("join", token=member_token)
    await host.request("room-mute", rid=5, audio=True)
    await host.expect("participant-joined")
    while not await guest.nothing(0.5):
        await guest.recv()
    kinds = {f["type"] for f in guest.seen}
    assert kinds <= {"access-state", "waiting", "queue-position"}


async def test_webinar_host_panelists_and_reusable_audience_token(clients):
    await _room(name="webinar", privacy="private", enable_knocking=False)
    host_token = await _token(room="webinar", sub="host", name="Host", grant={"canModerate": True})
    panel_token = await _token(
        room="webinar", sub="panel-1", name="Panelist", join_policy={"mode": "ask", "ttl": 300}
    )
    audience = await _token(room="webinar", viewer=True, grant={"canPublish": False})

    host = await clients("webinar")
    await host.request("join", token=host_token)
    panelist = await clients("webinar")
    await panelist.send(type="join", token=panel_token)
    w = await panelist.expect("waiting")
    # ttl 300 from the token.
    from datetime import datetime

    req = w["request"]
    span = datetime.fromisoformat(req["expires_at"]) - datetime.fromisoformat(req["requested_at"])
    assert span.total_seconds() == 300

    v1 = await clients("webinar")
    v2 = await clients("webinar")
    a1 = await v1.request("join", token=audience)
    a2 = await v2.request("join", token=audience)
    assert a1["ok"] and a2["ok"]
    assert a1["data"]["participant_id"] != a2["data"]["participant_id"]
    assert (await v1.expect("joined"))["participant"]["role"] == "viewer"
    knock = await host.expect("entry-requested")
    await host.request("admit", rid=9, request_id=knock["request"]["id"])
    j = await panelist.expect("joined")
    assert j["participant"]["participant_id"] == "panel-1"


async def test_guest_cancels(clients):
    await _room(name="clinic", privacy="private", enable_knocking=True)
    host = await clients()
    await host.request("join", token=await _token(room="clinic", sub="h", owner=True))
    guest = await clients()
    await guest.send(type="join", name="Shy")
    w = await guest.expect("waiting")
    await host.expect("entry-requested")
    ack = await guest.request("cancel", rid="c")
    assert ack["ok"] and ack["data"] == {"canceled": True}
    assert (await guest.expect("canceled"))["reason"] == "aborted"
    ev = await host.expect("entry-canceled")
    assert ev == {"type": "entry-canceled", "request_id": w["request"]["id"], "reason": "aborted"}
    # Admitting it afterwards is a no-op.
    ack = await host.request("admit", rid=3, request_id=w["request"]["id"])
    assert ack["data"]["effective"] is False and ack["data"]["outcome"] == "canceled"


async def test_three_patients_waiting_before_the_doctor_joins(clients):
    await _room(name="clinic", privacy="private", enable_knocking=True)
    patients = []
    for n in range(3):
        p = await clients(client=(f"10.0.0.{n}", 4000))
        await p.send(type="join", name=f"Patient {n}")
        await p.expect("waiting")
        patients.append(p)
    doctor = await clients()
    await doctor.request("join", token=await _token(room="clinic", sub="dr", owner=True))
    replay = [await doctor.expect("entry-requested") for _ in range(3)]
    assert [r["request"]["name"] for r in replay] == ["Patient 0", "Patient 1", "Patient 2"]
    ack = await doctor.request("admit-all", rid=1)
    assert ack["data"] == {"count": 3}
    for p in patients:
        assert (await p.expect("joined"))["participant"]["role"] == "participant"


BAD_POLICIES = [
    ({"owner": True}, {"mode": "ask"}),
    ({"grant": {"canModerate": True}}, {"mode": "ask"}),
    ({}, {"mode": "direct", "ttl": 30}),
    ({}, {"mode": "ask", "ttl": 5}),
    ({}, {"mode": "ask", "ttl": 601}),
]


@pytest.mark.parametrize(("extra", "policy"), BAD_POLICIES)
async def test_bad_join_policy_refused_at_mint_and_at_join(clients, extra, policy):
    from channels.db import database_sync_to_async

    from lobby.errors import InvalidEntryClaim

    await _room(name="clinic", privacy="private", enable_knocking=True)
    with pytest.raises(InvalidEntryClaim):
        await _token(room="clinic", join_policy=policy, **extra)
    hand_made = await database_sync_to_async(forge)(
        {"room": "clinic", "joinPolicy": policy, **extra}
    )
    c = await clients()
    await c.send(type="join", token=hand_made)
    err = await c.expect("error")
    assert err["error"]["code"] == "INVALID_ENTRY_CLAIM"
    assert (await c.recv())["code"] == 4400
    assert await database_sync_to_async(EntryRequest.objects.count)() == 0
    assert await database_sync_to_async(Participant.objects.count)() == 0


async def test_retry_after_timeout_and_fourth_knock_rate_limited(clients):
    from channels.db import database_sync_to_async

    from lobby import clock
    from lobby.services import sweep

    await _room(name="clinic", privacy="private", enable_knocking=True)
    token = await _token(room="clinic", sub="pat", join_policy={"mode": "ask", "ttl": 10})
    for attempt in range(3):
        g = await clients()
        await g.send(type="join", token=token)
        await g.expect("waiting")
        clock.advance(11)
        await database_sync_to_async(sweep)()
        err = await g.expect("error")
        assert err["error"]["code"] == "ENTRY_TIMEOUT", attempt
        assert (await g.recv())["code"] == 4408
    g = await clients()
    await g.send(type="join", token=token)
    err = await g.expect("error")
    assert err["error"]["code"] == "ENTRY_RATE_LIMITED"
    assert (await g.recv())["code"] == 4429
    statuses = await database_sync_to_async(
        lambda: list(EntryRequest.objects.values_list("cancel_reason", flat=True))
    )()
    assert statuses == ["timeout", "timeout", "timeout"]
