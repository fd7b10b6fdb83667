"""Deadlines are enforced where they are read, not only by the sweeper (STYLE §5): between a
knock's ``expires_at`` and the next sweep — after a restart, and for ~12 s after a database
outage while the sweepers only heartbeat — a knock that timed out is not pending.

A regression test: ``lobby.selectors.pending_requests`` and ``entry_requests(status="pending")``
once ignored ``expires_at``, so a moderator who joined (or resynchronised) in that window was
replayed the expired knock as ``entry-requested`` and the REST list called it pending.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from lobby import clock
from tests.factories import make_room, make_token
from tests.security.helpers import decide, knock

adb = database_sync_to_async


@pytest.mark.django_db(transaction=True)
async def test_a_moderator_joining_before_the_sweep_is_not_shown_an_expired_knock(clients):
    await adb(make_room)("clinic", privacy="private", enable_knocking=True, knock_ttl=10)
    owner = await adb(make_token)(room="clinic", sub="dr", owner=True)
    guest = await clients("clinic", client=("10.0.0.1", 1))
    assert (await guest.request("join", name="Pat"))["ok"]
    clock.advance(11)  # past the deadline; no sweeper has run yet
    mod = await clients("clinic", client=("10.0.0.2", 1))
    assert (await mod.request("join", token=owner))["ok"]
    assert [f for f in mod.unread if f["type"] == "entry-requested"] == []


@pytest.mark.django_db(transaction=True)
def test_the_rest_list_of_pending_knocks_leaves_out_an_expired_one(client):
    from lobby.api.auth import api_key_create

    room = make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=10)
    w = knock(room, name="Pat")
    clock.advance(11)
    late = decide(room, w.request.id)  # the write path already refuses it ...
    assert (late.effective, late.outcome) == (False, "canceled")
    other = knock(room, name="Sam", address="10.0.0.9")
    clock.advance(11)  # ... but Sam, never touched, is still listed after his deadline
    key = api_key_create(name="ops")[1]
    resp = client.get("/api/v1/rooms/clinic/entry-requests", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert resp.status_code == 200
    assert str(other.request.id) not in [r["id"] for r in resp.json()["data"]]
