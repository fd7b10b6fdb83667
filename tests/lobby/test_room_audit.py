"""Room create / update / delete take an actor and leave an audit row, like every other change
(issue 9): REST as ``api:<key>``, the admin as ``staff:<user>``, ``manage.py demo`` as
``command:demo``; a refused change writes none."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client as HttpClient

from lobby import services
from lobby.api.auth import api_key_create
from lobby.errors import BadRequest, InvalidPermissions
from lobby.models import AuditEvent, Room
from tests.factories import make_room
from tests.lobby.test_api import Api

pytestmark = pytest.mark.django_db(transaction=True)

GUEST = services.Actor(by="g-1", can_moderate=False, participant_id="g-1")


@pytest.fixture
def api(db) -> Api:
    _, key = api_key_create(name="backend")
    return Api(key)


def rows(action: str) -> list[tuple[str, str, dict]]:
    return [
        (e.room_name, e.actor, e.data)
        for e in AuditEvent.objects.filter(action=action).order_by("at", "pk")
    ]


def test_creating_a_room_over_rest_is_audited_with_the_key_and_properties(api: Api) -> None:
    resp = api.post("/rooms", {"name": "clinic", "properties": {"knock_ttl": 90}})
    assert resp.status_code == 200, resp.content
    room = Room.objects.get(name="clinic")
    (event,) = AuditEvent.objects.filter(action="room-create")
    assert (event.room, event.actor, event.data) == (room, "api:backend", {"knock_ttl": 90})


def test_changing_a_room_over_rest_is_audited_with_the_changed_values(api: Api) -> None:
    make_room("clinic")
    resp = api.patch("/rooms/clinic", {"properties": {"privacy": "private", "knock_ttl": 120}})
    assert resp.status_code == 200, resp.content
    assert rows("room-update") == [
        ("clinic", "api:backend", {"privacy": "private", "knock_ttl": 120})
    ]


def test_a_refused_room_change_writes_no_audit_row(api: Api) -> None:
    make_room("clinic")
    resp = api.patch("/rooms/clinic", {"properties": {"knock_ttl": 5}})
    assert resp.status_code == 400
    assert rows("room-update") == []
    assert Room.objects.get(name="clinic").knock_ttl == 60


def test_deleting_a_room_leaves_an_audit_row_that_outlives_it(api: Api) -> None:
    make_room("clinic")
    assert api.delete("/rooms/clinic").status_code == 200
    assert not Room.objects.filter(name="clinic").exists()
    (event,) = AuditEvent.objects.filter(action="room-delete")
    assert (event.room_id, event.room_name, event.actor) == (None, "clinic", "api:backend")


def test_a_participant_may_not_create_change_or_delete_rooms_and_nothing_is_written() -> None:
    room = make_room("clinic")
    before = AuditEvent.objects.count()
    with pytest.raises(InvalidPermissions):
        services.room_create(actor=GUEST, name="other")
    with pytest.raises(InvalidPermissions):
        services.room_update(room=room, actor=GUEST, knock_ttl=120)
    with pytest.raises(InvalidPermissions):
        services.room_delete(room=room, actor=GUEST)
    assert not Room.objects.filter(name="other").exists()
    room.refresh_from_db()
    assert room.knock_ttl == 60
    assert AuditEvent.objects.count() == before


def test_a_refused_room_create_writes_no_audit_row() -> None:
    with pytest.raises(BadRequest):
        services.room_create(actor=services.Actor.api("ops"), name="bad name!")
    assert rows("room-create") == []


def test_the_admin_audits_room_create_change_and_delete_as_the_staff_user() -> None:
    user = get_user_model().objects.create_user(
        "alice", password="correct horse battery staple", is_staff=True, is_superuser=True
    )
    staff = HttpClient()
    staff.force_login(user)
    form = {
        "name": "clinic",
        "privacy": "private",
        "enable_knocking": "on",
        "mode": "group",
        "max_active_talkers": "12",
        "knock_ttl": "60",
        "participants-TOTAL_FORMS": "0",
        "participants-INITIAL_FORMS": "0",
        "entry_requests-TOTAL_FORMS": "0",
        "entry_requests-INITIAL_FORMS": "0",
    }
    assert staff.post("/admin/lobby/room/add/", form).status_code == 302
    room = Room.objects.get(name="clinic")
    change = {k: v for k, v in form.items() if k != "name"} | {"knock_ttl": "120"}
    assert staff.post(f"/admin/lobby/room/{room.pk}/change/", change).status_code == 302
    resp = staff.post(f"/admin/lobby/room/{room.pk}/delete/", {"post": "yes"})
    assert resp.status_code == 302
    assert [(e.action, e.actor) for e in AuditEvent.objects.order_by("at", "pk")] == [
        ("room-create", "staff:alice"),
        ("room-update", "staff:alice"),
        ("room-delete", "staff:alice"),
    ]
    assert rows("room-update")[0][2] == {"knock_ttl": 120}


def test_manage_py_demo_audits_the_room_it_creates() -> None:
    call_command("demo", "--room", "demo", stdout=io.StringIO())
    assert [(name, actor) for name, actor, _ in rows("room-create")] == [("demo", "command:demo")]


def test_an_appointment_window_is_audited_as_iso_times() -> None:
    from datetime import timedelta

    from lobby import clock

    room = make_room("clinic")
    opens, closes = clock.now() + timedelta(hours=1), clock.now() + timedelta(hours=2)
    services.room_update(
        room=room, actor=services.Actor.api("ops"), opens_at=opens, closes_at=closes
    )
    assert rows("room-update") == [
        ("clinic", "api:ops", {"opens_at": opens.isoformat(), "closes_at": closes.isoformat()})
    ]
