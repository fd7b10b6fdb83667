"""Anonymous joins to a public room: a per-address join limit, a room capacity
(``max_participants``, ``ROOM_FULL``) and retention of departed participants.

Before: 60 open→join→close cycles from one address left 60 participant rows that ``purge`` never
removed, and nothing capped a room's size.
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client as HttpClient
from django.test import override_settings

from lobby import clock, services
from lobby.api.auth import api_key_create
from lobby.errors import EntryRateLimited, RoomFull
from lobby.models import EntryRequest, Participant, Room
from tests.factories import conn, make_room, make_token
from tests.lobby.helpers import aroom, atoken, closed_with, count, stored
from tests.support.threads import at_once

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 86400


def join(room_name: str = "hall", *, address: str = "10.0.0.9", token: str | None = None, **kw):
    plan = services.join_plan(room_name=room_name, token=token, **kw)
    return services.participant_join(plan=plan, conn=conn(address=address))


def cycle(room: Room, address: str = "10.0.0.9") -> services.Joined:
    """open → join → close: the socket goes and the presence leaves."""
    j = join(room.name, address=address)
    services.participant_leave(room=room, participant_id=j.participant.participant_id)
    return j


@pytest.fixture
def hall(db) -> Room:
    return make_room("hall")  # public, no knocking


# The per-address join limit -------------------------------------------------------------------


def test_sixty_join_cycles_from_one_address_stop_at_thirty(hall):
    for _ in range(30):
        cycle(hall)
    before = stored(Participant)
    refused = 0
    for _ in range(30):
        with pytest.raises(EntryRateLimited) as exc:
            cycle(hall)
        refused += 1
    assert refused == 30
    assert exc.value.as_dict()["code"] == "ENTRY_RATE_LIMITED"
    assert stored(Participant) == before  # a refused join stores nothing
    assert Participant.objects.count() == 30
    # Another address, and the same one once the window has passed, join again.
    cycle(hall, address="10.0.0.10")
    clock.advance(301)
    cycle(hall)
    assert Participant.objects.count() == 32


def test_the_join_limit_is_per_room_and_follows_the_setting(hall):
    make_room("other")
    with override_settings(ANTEROOM_ADDRESS_JOIN_LIMIT=(2, 60)):
        cycle(hall)
        cycle(hall)
        with pytest.raises(EntryRateLimited):
            cycle(hall)
        join("other")  # another room: its own count
        clock.advance(61)
        cycle(hall)


def test_resumes_personal_tokens_and_loopback_are_not_counted(hall):
    with override_settings(ANTEROOM_ADDRESS_JOIN_LIMIT=(1, 300)):
        first = join()
        # The same presence resumed: no new row, not a new join.
        for _ in range(3):
            again = join(resume=first.resume)
            first = again
        # A personal token (with sub) always has the same id: bounded by the tokens issued.
        token = make_token(room="hall", sub="member", name="Member")
        for _ in range(3):
            join(token=token)
        # Loopback (a reverse proxy without --proxy-headers) is not limited, as for socket caps.
        for _ in range(5):
            join(address="127.0.0.1")
        with pytest.raises(EntryRateLimited):
            join()
        # A reusable audience token (no sub) opens a fresh presence per join: it counts.
        with pytest.raises(EntryRateLimited):
            join(token=make_token(room="hall", name="Audience"))


async def test_the_thirty_first_join_over_the_socket_is_refused_4429(clients, settings):
    settings.ANTEROOM_ADDRESS_JOIN_LIMIT = (2, 300)
    await aroom(name="hall")
    for i in range(2):
        c = await clients("hall", client=("10.0.0.9", 5000 + i))
        await c.send(type="join", name=f"Guest {i}")
        await c.expect("joined")
        await c.send(type="leave")
        assert await closed_with(c) == 1000
    c = await clients("hall", client=("10.0.0.9", 5009))
    await c.send(type="join", name="One too many")
    err = await c.expect("error")
    assert err["error"] == {
        "code": "ENTRY_RATE_LIMITED",
        "message": "Too many requests to join. Try again later.",
    }
    assert await closed_with(c) == 4429
    assert await count(Participant) == 2


# Capacity: max_participants ------------------------------------------------------------------


def test_a_full_room_refuses_room_full_and_stores_nothing(db):
    room = make_room("hall", max_participants=2)
    a = join(address="10.0.0.1")
    join(address="10.0.0.2")
    before = stored(Participant)
    with pytest.raises(RoomFull) as exc:
        join(address="10.0.0.3")
    assert exc.value.as_dict() == {"code": "ROOM_FULL", "message": "The room is full."}
    assert (exc.value.http_status, exc.value.close_code) == (409, 4403)
    assert stored(Participant) == before
    # A moderator always enters (someone must be able to run a full room).
    owner = join(token=make_token(room="hall", sub="host", owner=True), address="10.0.0.4")
    assert owner.participant.role == "moderator"
    # The same presence resumed takes no new place.
    join(resume=a.resume, address="10.0.0.1")
    # Moderators count: with the owner in, one leaving guest frees no place yet.
    services.participant_leave(room=room, participant_id=a.participant.participant_id)
    with pytest.raises(RoomFull):
        join(address="10.0.0.3")
    services.participant_leave(room=room, participant_id="host")
    join(address="10.0.0.3")
    with pytest.raises(RoomFull):
        join(address="10.0.0.5")
    assert Participant.objects.exclude(status="left").count() == 2


def _knock(room: Room, name: str) -> services.Waiting:
    plan = services.join_plan(room_name=room.name, token=None, name=name)
    return services.entry_request_knock(plan=plan, conn=conn(address=f"10.1.0.{len(name)}"))


def test_admitting_into_a_full_room_is_room_full_and_the_knock_keeps_waiting(db):
    room = make_room("clinic", privacy="private", enable_knocking=True, max_participants=2)
    host = join("clinic", token=make_token(room="clinic", sub="host", owner=True))
    actor = services.Actor.participant(host.participant)
    waits = [_knock(room, n) for n in ("Ann", "Bobby", "Carla", "Dominic")]
    ids = [str(w.request.id) for w in waits]
    # The moderator takes one of the two places: one guest fits.
    d = services.entry_request_decide(room=room, request_id=ids[0], actor=actor, outcome="admitted")
    assert d.effective is True
    before = stored(EntryRequest, Participant)
    with pytest.raises(RoomFull):
        services.entry_request_decide(room=room, request_id=ids[1], actor=actor, outcome="admitted")
    with pytest.raises(RoomFull):
        services.entry_requests_decide_all(room=room, actor=actor, outcome="admitted")
    assert stored(EntryRequest, Participant) == before
    # Denying still works in a full room.
    services.entry_request_decide(room=room, request_id=ids[3], actor=actor, outcome="denied")
    # Raise the cap by two: admit-all admits the two oldest that fit, the rest keep waiting.
    services.room_update(room=room, actor=services.Actor.api("ops"), max_participants=3)
    assert services.entry_requests_decide_all(room=room, actor=actor, outcome="admitted") == 1
    statuses = dict(EntryRequest.objects.values_list("name", "status"))
    assert statuses == {
        "Ann": "admitted",
        "Bobby": "admitted",
        "Carla": "pending",
        "Dominic": "denied",
    }


def test_concurrent_joins_never_exceed_the_capacity(db):
    make_room("hall", max_participants=3)
    results = at_once(8, lambda i: join(address=f"10.2.0.{i}"))
    assert sum(isinstance(r, services.Joined) for r in results) == 3
    assert sum(isinstance(r, RoomFull) for r in results) == 5, results
    assert Participant.objects.exclude(status="left").count() == 3


async def test_over_the_socket_a_full_room_closes_4403_room_full(clients):
    await aroom(name="hall", max_participants=1)
    first = await clients("hall", client=("10.0.0.1", 4000))
    await first.send(type="join", name="First")
    await first.expect("joined")
    second = await clients("hall", client=("10.0.0.2", 4000))
    ack = await second.request("join", rid="j", name="Second")
    assert ack["ok"] is False and ack["error"]["code"] == "ROOM_FULL"
    assert await closed_with(second) == 4403
    host = await clients("hall")
    ok = await host.request("join", rid="h", token=await atoken(room="hall", sub="h", owner=True))
    assert ok["ok"] is True
    assert await count(Participant) == 2


def _api() -> HttpClient:
    _, key = api_key_create(name="backend")
    return HttpClient(headers={"authorization": f"Bearer {key}"})


def _send(http: HttpClient, method: str, path: str, body: Any) -> Any:
    return getattr(http, method)(
        "/api/v1" + path, json.dumps(body), content_type="application/json"
    )


def test_rest_sets_reads_and_clears_max_participants(db):
    http = _api()
    resp = _send(http, "post", "/rooms", {"name": "hall", "properties": {"max_participants": 50}})
    assert resp.status_code == 200, resp.content
    assert resp.json()["max_participants"] == 50
    assert http.get("/api/v1/rooms/hall").json()["max_participants"] == 50
    resp = _send(http, "patch", "/rooms/hall", {"properties": {"max_participants": None}})
    assert resp.status_code == 200 and resp.json()["max_participants"] is None
    assert Room.objects.get(name="hall").max_participants is None
    resp = _send(http, "post", "/rooms", {"name": "open"})
    assert resp.json()["max_participants"] is None  # no cap unless asked


@pytest.mark.parametrize("value", [0, -1, 100_001, "50", 2.5, True])
def test_rest_refuses_a_bad_max_participants_and_changes_nothing(db, value):
    http = _api()
    _send(http, "post", "/rooms", {"name": "hall", "properties": {"max_participants": 9}})
    before = stored(Room)
    for method, path in (("post", "/rooms"), ("patch", "/rooms/hall")):
        body: dict[str, Any] = {"properties": {"max_participants": value}}
        if method == "post":
            body["name"] = "other"
        resp = _send(http, method, path, body)
        assert resp.status_code == 400, resp.content
        assert resp.json()["error"]["code"] == "BAD_REQUEST"
    assert stored(Room) == before


def test_the_admin_sets_max_participants_through_the_services(db):
    room = make_room("hall")
    get_user_model().objects.create_superuser("root", password="pw-long-enough-1")
    http = HttpClient()
    http.force_login(get_user_model().objects.get(username="root"))
    page = http.get(f"/admin/lobby/room/{room.pk}/change/")
    assert b'name="max_participants"' in page.content
    form = {
        "privacy": "public",
        "mode": "group",
        "max_active_talkers": 12,
        "knock_ttl": 60,
        "max_participants": 7,
    }
    for prefix in ("participants", "entry_requests"):
        form |= {f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0}
    resp = http.post(f"/admin/lobby/room/{room.pk}/change/", form)
    assert resp.status_code == 302, resp.content[:2000]
    assert Room.objects.get(pk=room.pk).max_participants == 7
    with pytest.raises(RoomFull):
        for i in range(8):
            join(address=f"10.3.0.{i}")
    assert Participant.objects.count() == 7


# Retention of departed participants ----------------------------------------------------------


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge", *args, stdout=out)
    return out.getvalue()


def test_purge_removes_participants_who_left_long_ago_and_keeps_the_rest(hall):
    clock.advance(-40 * DAY)
    for i in range(5):
        cycle(hall, address=f"10.4.0.{i}")  # left 40 days ago
    still_here = join(address="10.4.1.1")  # joined 40 days ago and never left
    clock.reset()
    cycle(hall, address="10.4.2.1")  # left today
    out = purge("--dry-run")
    assert "departed participants would delete: 5" in out
    assert Participant.objects.count() == 7
    out = purge()
    assert "departed participants deleted: 5" in out
    ids = set(Participant.objects.values_list("participant_id", flat=True))
    assert still_here.participant.participant_id in ids
    assert len(ids) == 2
    assert "departed participants deleted: 0" in purge()


def test_participant_retention_has_its_own_setting_and_option(hall):
    clock.advance(-3 * DAY)
    cycle(hall)
    clock.reset()
    with override_settings(ANTEROOM_RETENTION_DAYS=30, ANTEROOM_PARTICIPANT_RETENTION_DAYS=7):
        assert "departed participants deleted: 0" in purge()
    with override_settings(ANTEROOM_PARTICIPANT_RETENTION_DAYS=2):
        assert "departed participants deleted: 1" in purge()
    cycle(hall)
    clock.advance(2 * DAY)
    assert "departed participants deleted: 1" in purge("--participant-days", "1")
    assert Participant.objects.count() == 0
