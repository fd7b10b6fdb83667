"""Wall-clock jumps: deadlines are timestamps in rows, so a jump forward times out exactly what
is overdue (once), and a step backwards neither cancels, resurrects nor unlocks anything."""

from __future__ import annotations

import pytest

from lobby import clock, events, services
from lobby.analytics import room_analytics
from lobby.errors import EntryRateLimited, EntryTimeout
from lobby.models import EntryRequest
from lobby.runtime.process import SERVER_ID
from tests.factories import make_room
from tests.security.helpers import conn, decide, knock

pytestmark = pytest.mark.django_db(transaction=True)


def terminal_frames(sent, request_id) -> list[str]:
    """What the guest's socket was told that ends its wait."""
    out = []
    for m in sent.to(events.request_group(request_id)):
        for f in m.get("frames", []):
            if f["type"] == "error":
                out.append(f["error"]["code"])
            elif f["type"] in ("joined", "canceled"):
                out.append(f["type"])
    return out


def test_a_jump_forward_times_out_every_overdue_knock_exactly_once(sent):
    room = make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=60)
    w = [knock(room, name=f"g{i}", address=f"10.0.0.{i}") for i in range(4)]
    services.entry_request_disconnected(
        request_id=w[3].request.id, connection_id=w[3].request.connection_id
    )
    clock.advance(3600)  # the host slept, or NTP stepped the clock an hour ahead

    # Before any sweep, a moderator's admit must not let an expired knock in.
    late = decide(room, w[0].request.id)
    assert (late.effective, late.outcome) == (False, "canceled")
    first = services.sweep()
    assert first.timed_out + first.disconnected == 3
    assert services.sweep().timed_out == 0  # idempotent: a second sweep changes nothing
    for x in w:
        r = EntryRequest.objects.get(pk=x.request.id)
        assert r.status == "canceled"
        assert r.cancel_reason in ("timeout", "disconnected")
        assert terminal_frames(sent, x.request.id) == ["ENTRY_TIMEOUT"]
    mods = [f for f in sent.frames(events.mods_group(room.pk)) if f["type"] == "entry-canceled"]
    assert sorted(f["request_id"] for f in mods) == sorted(str(x.request.id) for x in w)
    # A guest coming back with its resume key is told it timed out.
    with pytest.raises(EntryTimeout):
        services.join_plan(room_name="clinic", token=None, resume=w[1].resume)
    assert room_analytics(room=room)["abandonment_rate"] == 1.0


def test_a_jump_forward_does_not_make_this_process_look_dead():
    make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=600)
    services.server_heartbeat(server_id=SERVER_ID)
    plan = services.join_plan(room_name="clinic", token=None, name="Pat")
    c = conn()
    c.server_id = SERVER_ID
    w = services.entry_request_knock(plan=plan, conn=c)
    clock.advance(45)  # longer than the dead-server threshold and the disconnect grace
    services.sweep(server_id=SERVER_ID)
    r = EntryRequest.objects.get(pk=w.request.id)
    assert (r.status, r.disconnected_at) == ("pending", None)


def test_a_step_backwards_cancels_nothing_and_keeps_times_sane(sent):
    room = make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=60)
    w = knock(room, name="Pat")
    clock.advance(-3600)  # NTP stepped the clock an hour back
    assert services.sweep().timed_out == 0
    assert EntryRequest.objects.get(pk=w.request.id).status == "pending"
    admitted = decide(room, w.request.id)
    assert admitted.effective
    assert terminal_frames(sent, w.request.id) == ["joined"]
    # Forward again past the old deadline: a decided request stays decided.
    clock.advance(3600 + 120)
    services.sweep()
    assert EntryRequest.objects.get(pk=w.request.id).status == "admitted"
    assert terminal_frames(sent, w.request.id) == ["joined"]
    # Time to admit is never negative, whatever the clock did.
    stats = room_analytics(room=room)["time_to_admit"]
    assert stats["count"] == 1 and stats["p50"] == 0.0


def test_a_step_backwards_does_not_reset_the_knock_limit():
    room = make_room("clinic", privacy="private", enable_knocking=True)
    for i in range(3):
        w = knock(room, name=f"try{i}", browser="one-browser")
        services.entry_request_cancel(room=room, request_id=w.request.id)
    clock.advance(-3600)
    with pytest.raises(EntryRateLimited):
        knock(room, name="again", browser="one-browser")
    clock.advance(3600 + 301)  # five minutes after the last knock, by the original clock
    assert knock(room, name="later", browser="one-browser").request.status == "pending"
