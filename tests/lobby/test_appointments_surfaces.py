"""Appointment windows through the surfaces: the REST API (bodies, codes, the schema), the
socket (what an early guest is told; the refusals and their close codes) and the admin form."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as HttpClient

from lobby import clock, events
from lobby.api.auth import api_key_create
from lobby.models import EntryRequest, Room
from tests.lobby.helpers import adb, aroom, closed_with
from tests.lobby.test_api import Api, error_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(db) -> Api:
    _, key = api_key_create(name="clinic-backend")
    return Api(key)


def iso(minutes: float) -> str:
    value = clock.now().replace(microsecond=0) + timedelta(minutes=minutes)
    return value.isoformat().replace("+00:00", "Z")


# REST ---------------------------------------------------------------------------------------


def test_rest_creates_reads_changes_and_clears_a_window(api):
    opens, closes = iso(10), iso(40)
    resp = api.post(
        "/rooms",
        {
            "name": "clinic",
            "privacy": "private",
            "properties": {"enable_knocking": True, "opens_at": opens, "closes_at": closes},
        },
    )
    assert resp.status_code == 200, resp.content
    assert (resp.json()["opens_at"], resp.json()["closes_at"]) == (opens, closes)
    assert api.get("/rooms/clinic").json()["closes_at"] == closes
    # Another zone is kept as the same instant, reported in UTC.
    later = clock.now().replace(microsecond=0) + timedelta(minutes=50)
    body = {"properties": {"closes_at": later.astimezone().isoformat()}}
    resp = api.patch("/rooms/clinic", body)
    assert resp.status_code == 200, resp.content
    assert resp.json()["closes_at"] == later.isoformat().replace("+00:00", "Z")
    assert resp.json()["opens_at"] == opens  # left out: kept
    resp = api.patch("/rooms/clinic", {"properties": {"opens_at": None, "closes_at": None}})
    assert (resp.json()["opens_at"], resp.json()["closes_at"]) == (None, None)
    # A room made without one has none.
    assert api.post("/rooms", {"name": "plain"}).json()["opens_at"] is None


@pytest.mark.parametrize(
    ("props", "words"),
    [
        ({"opens_at": 1733000000}, "opens_at must be a string"),
        ({"opens_at": "tomorrow at ten"}, "opens_at: must be an ISO 8601 date and time"),
        ({"opens_at": "2026-12-01T10:00:00"}, "opens_at: must include a time zone"),
        ({"closes_at": "1999-12-31T10:00:00Z"}, "closes_at: must be between the years"),
        (
            {"opens_at": "2026-12-01T10:00:00Z", "closes_at": "2026-12-01T09:59:59Z"},
            "closes_at must be after opens_at",
        ),
        (
            {"opens_at": "2026-12-01T10:00:00Z", "closes_at": "2026-12-02T10:00:01Z"},
            "at most 24 hours long",
        ),
    ],
)
def test_rest_refuses_bad_windows_bad_request_and_makes_nothing(api, props, words):
    resp = api.post("/rooms", {"name": "clinic", "properties": props})
    err = error_of(resp, 400, "BAD_REQUEST")
    assert words in err["message"]
    assert not Room.objects.filter(name="clinic").exists()


def test_rest_refuses_a_patch_that_would_close_before_the_stored_opening(api):
    opens, closes = iso(10), iso(40)
    api.post("/rooms", {"name": "clinic", "properties": {"opens_at": opens, "closes_at": closes}})
    resp = api.patch("/rooms/clinic", {"properties": {"closes_at": iso(5), "knock_ttl": 120}})
    err = error_of(resp, 400, "BAD_REQUEST")
    assert err["message"] == "closes_at must be after opens_at."
    room = api.get("/rooms/clinic").json()
    assert (room["opens_at"], room["closes_at"], room["knock_ttl"]) == (opens, closes, 60)


def test_the_schema_documents_the_window(db):
    text = HttpClient().get("/api/schema/").content.decode()
    for words in ("opens_at", "closes_at", "ROOM_NOT_OPEN", "ROOM_CLOSED", "date-time"):
        assert words in text, words


# The socket ---------------------------------------------------------------------------------


async def test_an_early_guest_is_told_when_the_room_opens_and_nothing_else(clients):
    room = await aroom(
        name="clinic",
        privacy="private",
        enable_knocking=True,
        opens_at=clock.now() + timedelta(minutes=10),
        closes_at=clock.now() + timedelta(minutes=40),
    )
    guest = await clients(client=("10.0.0.1", 4000))
    await guest.send(type="join", name="Early")
    waiting = await guest.expect("waiting")
    assert waiting["request"]["expires_at"] == events._ts(room.closes_at)
    assert await guest.expect("room-opens") == {
        "type": "room-opens",
        "opens_at": events._ts(room.opens_at),
    }
    while not await guest.nothing(0.3):
        await guest.recv()
    kinds = {f["type"] for f in guest.seen}
    assert kinds <= {"access-state", "waiting", "queue-position", "room-opens", "ack"}, kinds
    assert not [f for f in guest.seen if "closes_at" in str(f) or "participants" in f]


async def test_too_early_and_too_late_knocks_are_refused_with_their_codes(clients, settings):
    settings.ANTEROOM_APPOINTMENT_EARLY = 1800
    await aroom(
        name="later",
        privacy="private",
        enable_knocking=True,
        opens_at=clock.now() + timedelta(hours=2),
    )
    early = await clients("later", client=("10.0.0.1", 4000))
    await early.send(type="join", name="Too early")
    err = await early.expect("error")
    assert err["error"]["code"] == "ROOM_NOT_OPEN"
    assert err["error"]["retry_after"] == pytest.approx(90 * 60, abs=2)
    assert set(err["error"]) == {"code", "message", "opens_at", "knock_from", "retry_after"}
    assert await closed_with(early) == 4403

    await aroom(
        name="over",
        privacy="private",
        enable_knocking=True,
        opens_at=clock.now() - timedelta(hours=2),
        closes_at=clock.now() - timedelta(hours=1),
    )
    late = await clients("over", client=("10.0.0.2", 4000))
    await late.send(type="join", name="Too late")
    err = await late.expect("error")
    assert err["error"]["code"] == "ROOM_CLOSED"
    assert await closed_with(late) == 4403
    assert await adb(lambda: EntryRequest.objects.count())() == 0


# The admin ----------------------------------------------------------------------------------


def test_the_admin_form_refuses_a_window_that_closes_first(admin_client):
    resp = admin_client.post(
        "/admin/lobby/room/add/",
        {
            "name": "clinic",
            "privacy": "private",
            "enable_knocking": "on",
            "mode": "group",
            "max_active_talkers": 12,
            "knock_ttl": 60,
            "opens_at_0": "2026-12-01",
            "opens_at_1": "10:00:00",
            "closes_at_0": "2026-12-01",
            "closes_at_1": "09:00:00",
            **_inline_management(),
        },
    )
    assert resp.status_code == 200
    assert "closes_at must be after opens_at." in resp.content.decode()
    assert not Room.objects.filter(name="clinic").exists()
    resp = admin_client.post(
        "/admin/lobby/room/add/",
        {
            "name": "clinic",
            "privacy": "private",
            "enable_knocking": "on",
            "mode": "group",
            "max_active_talkers": 12,
            "knock_ttl": 60,
            "opens_at_0": "2026-12-01",
            "opens_at_1": "10:00:00",
            "closes_at_0": "2026-12-01",
            "closes_at_1": "10:30:00",
            **_inline_management(),
        },
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    room = Room.objects.get(name="clinic")
    assert room.opens_at is not None and room.closes_at is not None
    assert room.closes_at - room.opens_at == timedelta(minutes=30)


def _inline_management() -> dict[str, str]:
    out = {}
    for prefix in ("participants", "entry_requests"):
        out.update(
            {
                f"{prefix}-TOTAL_FORMS": "0",
                f"{prefix}-INITIAL_FORMS": "0",
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1000",
            }
        )
    return out


# The demo command (scripts/serve) ------------------------------------------------------------


def test_the_demo_points_at_appointment_windows_and_prints_one_it_has(db):
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("demo", "--base", "http://127.0.0.1:8123", stdout=out)
    assert "Appointments: give the room opens_at/closes_at" in out.getvalue()
    Room.objects.filter(name="demo").update(
        opens_at=clock.now() + timedelta(hours=1), closes_at=clock.now() + timedelta(hours=2)
    )
    out = io.StringIO()
    call_command("demo", "--base", "http://127.0.0.1:8123", stdout=out)
    assert "Appointment window: opens 20" in out.getvalue()
    assert "knocks wait until it closes" in out.getvalue()


# The knock page -----------------------------------------------------------------------------


def test_the_knock_page_tells_the_opening_before_it_and_never_the_close(db):
    import json
    import re

    from tests.factories import make_room

    room = make_room(
        "clinic",
        privacy="private",
        enable_knocking=True,
        opens_at=clock.now() + timedelta(minutes=45),
        closes_at=clock.now() + timedelta(minutes=75),
    )

    def config() -> dict:
        html = HttpClient().get("/r/clinic/").content.decode()
        found = re.search(r'id="anteroom-config" type="application/json">(.*?)</script>', html)
        assert found
        return json.loads(found.group(1))

    seen = config()
    assert seen["opens_at"] == events._ts(room.opens_at)
    assert seen["knock_from"] == events._ts(room.opens_at - timedelta(minutes=30))
    assert "closes_at" not in seen and str(events._ts(room.closes_at)) not in str(seen)
    clock.advance(45 * 60)  # open: nothing about the window any more
    seen = config()
    assert "opens_at" not in seen and "knock_from" not in seen
