"""Appointment windows (lobby/appointments.py): a clinic's room opens at 10:00 and closes at
10:30; patients who arrive early wait for the opening, with honest text and nothing else about
the room; late knocks are refused ROOM_CLOSED; deadlines are stored, so a restart and the sweeper
treat them as any other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from lobby import cache, clock, events, services
from lobby.errors import BadRequest, EntryRateLimited, EntryTimeout, RoomClosed, RoomNotOpen
from lobby.models import EntryRequest, Room
from lobby.services import appointments
from tests.factories import conn, frames_to, knock, lobby, make_room, make_token, moderator, mods

pytestmark = pytest.mark.django_db(transaction=True)

MIN = timedelta(minutes=1)
OPS = services.Actor.api("ops")


def at(minutes: float) -> datetime:
    """A time ``minutes`` from the test's now (the clock tests move)."""
    return clock.now() + timedelta(minutes=minutes)


@pytest.fixture
def clinic(db):
    """Opens in 10 minutes, closes 30 minutes later; the usual 60 s knock ttl."""
    return make_room(
        "clinic",
        privacy="private",
        enable_knocking=True,
        knock_ttl=60,
        opens_at=at(10),
        closes_at=at(40),
    )


def window(room: Room) -> tuple[datetime | None, datetime | None]:
    room.refresh_from_db()
    return room.opens_at, room.closes_at


# Knocks before, in and after the window -----------------------------------------------------


def test_an_early_knock_waits_until_the_window_closes_beyond_the_600_s_maximum(clinic, sent):
    w = knock(clinic, name="Pat")
    r = EntryRequest.objects.get()
    assert r.status == "pending"
    assert r.expires_at == clinic.closes_at  # 40 minutes: more than knock_ttl's 600 s maximum
    assert (r.expires_at - r.requested_at).total_seconds() == pytest.approx(40 * 60, abs=1)
    assert w.position == 1
    # Moderators hear of the knock as of any other, with the stored deadline.
    [frame] = frames_to(sent, mods(clinic))
    assert frame["type"] == "entry-requested"
    assert frame["request"]["expires_at"] == events._ts(clinic.closes_at)
    # The guest is told when the room opens, and nothing else about it.
    assert appointments.guest_frames(clinic, now=clock.now()) == [
        {"type": "room-opens", "opens_at": events._ts(clinic.opens_at)}
    ]
    assert events.guest_request_payload(r) == {
        "id": str(r.id),
        "requested_at": events._ts(r.requested_at),
        "expires_at": events._ts(r.expires_at),
    }


def test_once_open_a_guest_is_told_nothing_about_the_window(clinic):
    clock.advance(10 * 60)
    assert appointments.guest_frames(clinic, now=clock.now()) == []
    knock(clinic)
    assert EntryRequest.objects.get().expires_at == clinic.closes_at


@override_settings(ANTEROOM_APPOINTMENT_EARLY=1800)
def test_a_knock_more_than_30_minutes_early_is_refused_and_nothing_is_stored(db, sent):
    room = make_room(
        "clinic", privacy="private", enable_knocking=True, opens_at=at(45), closes_at=at(75)
    )
    sent.items.clear()
    with pytest.raises(RoomNotOpen) as err:
        knock(room)
    e = err.value
    assert (e.code, e.close_code, e.http_status) == ("ROOM_NOT_OPEN", 4403, 403)
    assert e.extra == {
        "opens_at": events._ts(room.opens_at),
        "knock_from": events._ts(room.opens_at - timedelta(minutes=30)),
        "retry_after": 15 * 60,
    }
    assert EntryRequest.objects.count() == 0
    assert sent.items == []
    # From 30 minutes before the opening, the same guest is let in line.
    clock.advance(15 * 60)
    knock(room)
    assert EntryRequest.objects.get().expires_at == room.closes_at


def test_refused_knocks_cost_no_rate_limit_allowance(db, settings):
    settings.ANTEROOM_BROWSER_KNOCK_LIMIT = (3, 300)
    room = make_room(
        "clinic", privacy="private", enable_knocking=True, opens_at=at(45), closes_at=at(75)
    )
    for _ in range(5):
        with pytest.raises(RoomNotOpen):
            knock(room, c=conn(browser="b1"))
    clock.advance(15 * 60)
    for _ in range(3):
        knock(room, c=conn(browser="b1"))  # each replaces the last: one pending knock
    with pytest.raises(EntryRateLimited):
        knock(room, c=conn(browser="b1"))


def test_a_knock_after_the_window_is_refused_room_closed_and_a_waiting_guest_keeps_its_place(
    clinic, sent
):
    tok = make_token(room="clinic", sub="pat", name="Pat", join_policy={"mode": "ask", "ttl": 60})
    w = knock(clinic, token=tok)
    clock.advance(40 * 60)  # the window has closed; the sweeper has not run yet
    sent.items.clear()
    with pytest.raises(RoomClosed) as err:
        knock(clinic, token=tok)  # the same guest knocking again from a new tab
    assert (err.value.code, err.value.close_code) == ("ROOM_CLOSED", 4403)
    assert err.value.extra == {"closed_at": events._ts(clinic.closes_at)}
    # Nothing lost: the refused knock did not replace the pending one, nobody heard anything.
    r = EntryRequest.objects.get()
    assert (r.id, r.status) == (w.request.id, "pending")
    assert sent.items == []
    # The sweeper then times it out at its stored deadline, as any knock.
    assert services.sweep().timed_out == 1
    assert EntryRequest.objects.get().cancel_reason == "timeout"


def test_a_knock_just_before_the_close_still_gets_the_usual_ttl(clinic):
    clock.advance(40 * 60 - 5)
    knock(clinic)
    r = EntryRequest.objects.get()
    assert r.expires_at == r.requested_at + timedelta(seconds=60)


def test_with_only_an_opening_time_the_ttl_counts_from_the_opening(db):
    room = make_room("clinic", privacy="private", enable_knocking=True, opens_at=at(10))
    knock(room, c=conn(browser="early"))
    assert EntryRequest.objects.get().expires_at == room.opens_at + timedelta(seconds=60)
    clock.advance(20 * 60)
    late = knock(room, c=conn(browser="late"))
    assert late.request.expires_at == late.request.requested_at + timedelta(seconds=60)


def test_with_only_a_closing_time_knocks_wait_until_it(db):
    room = make_room("clinic", privacy="private", enable_knocking=True, closes_at=at(90))
    assert appointments.guest_frames(room, now=clock.now()) == []
    knock(room)
    assert EntryRequest.objects.get().expires_at == room.closes_at


def test_a_token_knock_gets_the_window_too(clinic):
    tok = make_token(room="clinic", sub="pat", name="Pat", join_policy={"mode": "ask", "ttl": 30})
    knock(clinic, token=tok)
    assert EntryRequest.objects.get().expires_at == clinic.closes_at


def test_rooms_without_a_window_are_unchanged(db):
    room = make_room("plain", privacy="private", enable_knocking=True, knock_ttl=60)
    knock(room)
    r = EntryRequest.objects.get()
    assert r.expires_at - r.requested_at == timedelta(seconds=60)


# The sweeper and restarts -------------------------------------------------------------------


def test_the_sweeper_keeps_early_arrivals_and_times_them_out_at_the_close(clinic, sent):
    w = knock(clinic)
    clock.advance(61)  # past the room's usual 60 s ttl
    assert services.sweep().timed_out == 0
    clock.advance(10 * 60)  # the room has opened; nobody has admitted yet
    assert services.sweep().timed_out == 0
    assert EntryRequest.objects.get().status == "pending"
    clock.advance(40 * 60 - 61 - 10 * 60 - 1)  # one second before the close
    assert services.sweep().timed_out == 0
    clock.advance(1)
    sent.items.clear()
    assert services.sweep().timed_out == 1
    assert frames_to(sent, events.request_group(w.request.id)) == [
        events.error_frame("ENTRY_TIMEOUT", EntryTimeout().message)
    ]


@override_settings(ANTEROOM_DISCONNECT_GRACE=15)
def test_appointment_windows_across_a_restart(clinic, sent):
    """The process holding an early guest's socket dies; the guest reconnects to the new one
    with its resume key. The deadline is the stored one: the new process's sweeper neither drops
    the early arrival at the old 60 s ttl nor at the opening, and times it out at the close."""
    services.server_heartbeat(server_id="old")
    first = knock(clinic, name="Early", c=conn(server="old"))
    stored = EntryRequest.objects.get().expires_at
    assert stored == clinic.closes_at
    # A restart: the old process stops beating, its in-memory state is gone.
    clock.advance(11)
    cache.clear()
    assert services.sweep(server_id="new").dead_servers == 1
    r = EntryRequest.objects.get()
    assert r.status == "pending" and r.disconnected_at is not None
    # The guest's page reconnects to the new process within the grace period.
    again = knock(clinic, resume=first.resume, c=conn(server="new"))
    assert again.request.id == first.request.id
    assert again.request.expires_at == stored
    assert appointments.guest_frames(services.get_room("clinic"), now=clock.now()) == [
        {"type": "room-opens", "opens_at": events._ts(clinic.opens_at)}
    ]
    # Past the old ttl and the grace period, then past the opening: still waiting.
    for step in (60, 10 * 60):
        clock.advance(step)
        res = services.sweep(server_id="new")
        assert (res.timed_out, res.disconnected) == (0, 0)
    assert EntryRequest.objects.get().status == "pending"
    # A moderator connecting after the restart sees the early arrival.
    moderator(clinic)
    assert [f["request"]["id"] for f in frames_to(sent, mods(clinic)) if "request" in f][-1:] == [
        str(first.request.id)
    ]
    # At the close, the new process's sweeper times it out, once.
    clock.advance((stored - clock.now()).total_seconds())
    assert services.sweep(server_id="new").timed_out == 1
    assert services.sweep(server_id="new").timed_out == 0
    r = EntryRequest.objects.get()
    assert (r.status, r.cancel_reason) == ("canceled", "timeout")
    assert r.resolved_at is not None and r.resolved_at >= stored


@override_settings(ANTEROOM_DISCONNECT_GRACE=15)
def test_an_early_arrival_who_never_comes_back_is_canceled_after_the_grace(clinic):
    services.server_heartbeat(server_id="old")
    knock(clinic, c=conn(server="old"))
    clock.advance(11)
    services.sweep(server_id="new")
    clock.advance(15)
    assert services.sweep(server_id="new").disconnected == 1
    assert EntryRequest.objects.get().cancel_reason == "disconnected"


# Moderators ---------------------------------------------------------------------------------


def test_moderators_may_admit_before_the_room_opens(clinic, sent):
    dr = moderator(clinic)
    w = knock(clinic, name="Pat")
    other = knock(clinic, name="Sam", c=conn(browser="b2"))
    d = services.entry_request_decide(
        room=clinic, request_id=w.request.id, actor=dr, outcome="admitted"
    )
    assert (d.outcome, d.effective) == ("admitted", True)
    assert services.entry_requests_decide_all(room=clinic, actor=dr, outcome="admitted") == 1
    assert EntryRequest.objects.get(pk=other.request.id).status == "admitted"
    assert appointments.is_early(d.request, clinic, now=clock.now())


# Setting and changing a window --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"opens_at": 1, "closes_at": 2}, "opens_at must be a date and time"),
        ({"opens_at": "2026-12-01T10:00:00Z"}, "opens_at must be a date and time"),
        ({"closes_at": datetime(2026, 12, 1, 10, 0)}, "closes_at must include a time zone"),
        ({"opens_at": datetime(1999, 1, 1, tzinfo=UTC)}, "between the years 2000 and 2999"),
        (
            {"opens_at": datetime(2026, 12, 1, 10, tzinfo=UTC), "closes_at": None},
            None,
        ),
        (
            {
                "opens_at": datetime(2026, 12, 1, 10, tzinfo=UTC),
                "closes_at": datetime(2026, 12, 1, 9, tzinfo=UTC),
            },
            "closes_at must be after opens_at",
        ),
        (
            {
                "opens_at": datetime(2026, 12, 1, 10, tzinfo=UTC),
                "closes_at": datetime(2026, 12, 1, 10, tzinfo=UTC),
            },
            "closes_at must be after opens_at",
        ),
        (
            {
                "opens_at": datetime(2026, 12, 1, 10, tzinfo=UTC),
                "closes_at": datetime(2026, 12, 2, 10, 1, tzinfo=UTC),
            },
            "at most 24 hours long",
        ),
    ],
)
def test_bad_windows_are_refused_bad_request_and_no_room_is_made(db, fields, message):
    if message is None:
        assert make_room("ok", **fields).opens_at == fields["opens_at"]
        return
    with pytest.raises(BadRequest, match=message) as err:
        make_room("bad", privacy="private", enable_knocking=True, **fields)
    assert err.value.code == "BAD_REQUEST"
    assert not Room.objects.filter(name="bad").exists()


def test_an_update_is_checked_against_the_stored_window_and_changes_nothing_when_refused(
    clinic, sent
):
    knock(clinic)
    before = window(clinic)
    deadline = EntryRequest.objects.get().expires_at
    sent.items.clear()
    with pytest.raises(BadRequest, match="closes_at must be after opens_at"):
        services.room_update(room=clinic, actor=OPS, closes_at=clinic.opens_at - MIN)
    with pytest.raises(BadRequest, match="at most 24 hours"):
        services.room_update(
            room=clinic, actor=OPS, closes_at=clinic.opens_at + timedelta(hours=25)
        )
    with pytest.raises(BadRequest, match="closes_at must be after opens_at"):
        services.room_update(room=clinic, actor=OPS, opens_at=clinic.closes_at, knock_ttl=120)
    assert window(clinic) == before and clinic.knock_ttl == 60
    assert EntryRequest.objects.get().expires_at == deadline
    assert sent.items == []


def test_a_later_window_extends_waiting_guests_and_tells_them_the_new_opening(clinic, sent):
    w = knock(clinic)
    sent.items.clear()
    services.room_update(room=clinic, actor=OPS, opens_at=at(20), closes_at=at(60))
    later = window(clinic)
    r = EntryRequest.objects.get()
    assert r.expires_at == later[1]
    assert frames_to(sent, lobby(clinic)) == [
        {"type": "room-opens", "opens_at": events._ts(later[0])}
    ]
    assert frames_to(sent, events.request_group(w.request.id)) == [
        {"type": "deadline-extended", "expires_at": events._ts(later[1])}
    ]
    updated = [f for f in frames_to(sent, mods(clinic)) if f["type"] == "entry-updated"]
    assert [u["request"]["expires_at"] for u in updated] == [events._ts(later[1])]
    # Members hear the room's new window; waiting guests only the opening time.
    room_updated = [f for f in sent.frames("members.") if f["type"] == "room-updated"]
    assert room_updated[-1]["room"]["opens_at"] == events._ts(later[0])


def test_an_earlier_window_never_shortens_a_waiting_guests_deadline(clinic, sent):
    knock(clinic)
    deadline = EntryRequest.objects.get().expires_at
    sent.items.clear()
    services.room_update(room=clinic, actor=OPS, opens_at=None, closes_at=at(5))
    assert EntryRequest.objects.get().expires_at == deadline
    # The room is open now (no opening time): waiting guests are told so.
    assert frames_to(sent, lobby(clinic)) == [{"type": "room-opens", "opens_at": None}]
    assert [f for f in sent.frames("req.")] == []


def test_clearing_the_window_keeps_deadlines_and_new_knocks_get_the_ttl(clinic):
    knock(clinic, c=conn(browser="b1"))
    deadline = EntryRequest.objects.get().expires_at
    services.room_update(room=clinic, actor=OPS, opens_at=None, closes_at=None)
    assert window(clinic) == (None, None)
    assert EntryRequest.objects.get().expires_at == deadline
    w = knock(clinic, c=conn(browser="b2"))
    assert w.request.expires_at - w.request.requested_at == timedelta(seconds=60)


def test_a_window_changed_after_the_room_was_looked_up_is_read_again_under_the_lock(clinic):
    plan = services.join_plan(room_name="clinic", token=None, name="Pat")
    assert plan.room.closes_at is not None
    # The window closes (another process, an admin edit) between the lookup and the knock.
    Room.objects.filter(pk=clinic.pk).update(opens_at=at(-60), closes_at=at(-1))
    with pytest.raises(RoomClosed):
        services.entry_request_knock(plan=plan, conn=conn())
    assert EntryRequest.objects.count() == 0
