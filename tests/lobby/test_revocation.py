"""Revoking a token ends what it opened: the socket closes, the presence leaves, the knock's
resume fails; an expired moderator token stops moderating on its open socket."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from lobby import clock, events, services, tokens
from lobby.models import EntryRequest, Participant
from tests.factories import make_room, make_token

pytestmark = pytest.mark.django_db(transaction=True)


def jti_of(token: str) -> str:
    jti = tokens.verify_token(token).jti
    assert jti is not None
    return jti


async def test_revoking_a_token_closes_its_sockets_and_the_room_hears_it(clients):
    await database_sync_to_async(make_room)("clinic", privacy="private", enable_knocking=True)
    owner_token = await database_sync_to_async(make_token)(room="clinic", sub="host", owner=True)
    member_token = await database_sync_to_async(make_token)(room="clinic", sub="m1", name="Mo")
    asker = await database_sync_to_async(make_token)(
        room="clinic", sub="ask-1", join_policy={"mode": "ask"}
    )
    host = await clients()
    await host.request("join", token=owner_token)
    member = await clients()
    await member.request("join", token=member_token)
    waiting = await clients()
    await waiting.send(type="join", token=asker)
    w = await waiting.expect("waiting")

    for token in (member_token, asker):
        jti = await database_sync_to_async(jti_of)(token)
        assert await database_sync_to_async(services.token_revoke)(jti=jti, by="api:ops")

    err = await member.expect("error")
    assert err["error"]["code"] == "TOKEN_REVOKED"
    assert (await member.recv())["code"] == 4401
    left = await host.expect("participant-left")
    assert left["participant"]["participant_id"] == "m1"
    assert (await waiting.expect("error"))["error"]["code"] == "TOKEN_REVOKED"
    assert (await waiting.recv())["code"] == 4401

    # Neither can come back through a resume key.
    again = await clients()
    await again.send(type="join", resume=w["resume"])
    assert (await again.expect("error"))["error"]["code"] == "TOKEN_REVOKED"
    status = await database_sync_to_async(
        lambda: Participant.objects.get(participant_id="m1").status
    )()
    assert status == "left"
    pending = await database_sync_to_async(
        lambda: EntryRequest.objects.get(pk=w["request"]["id"]).status
    )()
    assert pending == "canceled"  # nobody can admit a knock whose token was revoked
    canceled = await host.expect("entry-canceled")
    assert canceled == {
        "type": "entry-canceled",
        "request_id": w["request"]["id"],
        "reason": "disconnected",
    }


async def test_an_expired_moderator_token_stops_moderating_on_its_open_socket(clients):
    import time

    await database_sync_to_async(make_room)("clinic", privacy="private", enable_knocking=True)
    short = await database_sync_to_async(make_token)(
        room="clinic", sub="host", owner=True, exp=int(time.time()) + 60
    )
    host = await clients()
    await host.request("join", token=short)
    guest = await clients()
    await guest.send(type="join", name="Pat")
    await guest.expect("waiting")
    knock = await host.expect("entry-requested")
    clock.advance(61)
    ack = await host.request("admit", rid=2, request_id=knock["request"]["id"])
    assert ack["ok"] is False and ack["error"]["code"] == "TOKEN_EXPIRED"
    status = await database_sync_to_async(
        lambda: EntryRequest.objects.get(pk=knock["request"]["id"]).status
    )()
    assert status in ("pending", "canceled")  # never admitted by the lapsed moderator


def test_a_waiting_guest_is_told_of_the_revocation_exactly_once(sent):
    """One outcome frame, then the close: TOKEN_REVOKED / 4401, not also ENTRY_TIMEOUT."""
    make_room("clinic")
    token = make_token(sub="pat", name="Pat", join_policy={"mode": "ask"})
    jti = jti_of(token)
    plan = services.join_plan(room_name="clinic", token=token)
    c = services.Connection(server_id="srv", connection_id="c1")
    w = services.entry_request_knock(plan=plan, conn=c)
    sent.items.clear()
    assert services.token_revoke(jti=jti, by="api:backend") is True
    [told] = sent.to(events.request_group(w.request.id))
    revoked = {"code": "TOKEN_REVOKED", "message": "The meeting token has been revoked."}
    assert told["frames"] == [{"type": "error", "error": revoked}]
    assert (told["action"], told["close_code"]) == ("close", 4401)
    row = EntryRequest.objects.get(pk=w.request.pk)
    assert (row.status, row.cancel_reason) == ("canceled", "disconnected")
    mods = [f for g, m in sent.items if g.startswith("mods.") for f in m["frames"]]
    assert [f["type"] for f in mods] == ["entry-canceled"]
    assert mods[0]["reason"] == "disconnected" and mods[0]["request_id"] == str(w.request.id)
    # Revoking again tells nobody anything.
    sent.items.clear()
    assert services.token_revoke(jti=jti) is False
    assert sent.items == []
