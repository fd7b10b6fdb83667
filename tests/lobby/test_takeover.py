"""One live socket per guest: a resume key re-used while its socket is still open replaces it.

A leaked or copied resume key (a second tab, a script) must not give two sockets that both hear
the outcome. The newer socket takes over; the older is told ``REPLACED`` and closed with 4409,
as a participant joining again from another socket already is.
"""

from __future__ import annotations

import pytest

from lobby.models import EntryRequest, Participant
from tests.lobby.helpers import adb, aroom, atoken, closed_with, count

pytestmark = pytest.mark.django_db(transaction=True)


async def _host_and_guest(clients):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    host = await clients()
    await host.request("join", token=await atoken(sub="host", name="Host", owner=True))
    await host.expect("joined")
    guest = await clients(client=("10.0.0.5", 4000))
    await guest.send(type="join", name="Pat")
    waiting = await guest.expect("waiting")
    await host.expect("entry-requested")
    return host, guest, waiting


async def test_a_resume_key_used_while_its_socket_is_open_replaces_that_socket(clients):
    host, first, waiting = await _host_and_guest(clients)
    second = await clients(client=("10.0.0.6", 4001))
    await second.send(type="join", resume=waiting["resume"])
    again = await second.expect("waiting")
    assert again["request"] == waiting["request"]  # the same knock, not a second one
    err = await first.expect("error")
    assert err["error"] == {"code": "REPLACED", "message": "You joined from another connection."}
    assert await closed_with(first) == 4409
    # The old socket's close does not mark the knock disconnected: the new socket holds it.
    row = await adb(EntryRequest.objects.get)(pk=waiting["request"]["id"])
    assert row.status == "pending" and row.disconnected_at is None
    assert await count(EntryRequest) == 1

    ack = await host.request("admit", rid="a", request_id=waiting["request"]["id"])
    assert ack["data"]["effective"] is True
    joined = await second.expect("joined")
    assert joined["participant"]["name"] == "Pat"
    assert [f["type"] for f in first.seen].count("joined") == 0
    assert await count(Participant, name="Pat") == 1
    assert (await host.expect("participant-joined"))["participant"]["name"] == "Pat"


async def test_the_replaced_socket_can_neither_cancel_nor_rename_the_knock(clients):
    _host, first, waiting = await _host_and_guest(clients)
    second = await clients(client=("10.0.0.6", 4001))
    await second.send(type="join", resume=waiting["resume"])
    await second.expect("waiting")
    await second.expect("queue-position")
    assert await closed_with(first) == 4409
    # The replaced socket is closed; what it sends now reaches nothing.
    await first.send(type="cancel")
    await first.send(type="update-name", name="Mallory")
    row = await adb(EntryRequest.objects.get)(pk=waiting["request"]["id"])
    assert (row.status, row.name) == ("pending", "Pat")
    assert await second.nothing(0.3)


async def test_a_participant_resume_key_used_while_its_socket_is_open_replaces_it(clients):
    await aroom(name="clinic")
    host = await clients()
    await host.request("join", token=await atoken(sub="host", owner=True))
    await host.expect("joined")
    first = await clients(client=("10.0.0.5", 4000))
    await first.send(type="join", name="Pat")
    joined = await first.expect("joined")
    second = await clients(client=("10.0.0.6", 4001))
    await second.send(type="join", resume=joined["resume"])
    again = await second.expect("joined")
    assert again["participant"]["participant_id"] == joined["participant"]["participant_id"]
    assert (await first.expect("error"))["error"]["code"] == "REPLACED"
    assert await closed_with(first) == 4409
    await host.request("room-pause", rid="p")
    assert (await second.expect("room-updated"))["room"]["paused"] is True
    assert await count(Participant, name="Pat") == 1
