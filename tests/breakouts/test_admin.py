"""The Django admin for breakout rooms: members and invitations are shown, and its actions go
through the services (so live clients hear of them)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from breakouts import services as bs
from lobby.models import AuditEvent, Room

from .helpers import membership, party, to_person

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff(db) -> Client:
    user = get_user_model().objects.create_user("ops", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def _rooms():
    p = party(n=4)
    rooms, _ = bs.breakout_rooms_create_and_invite(
        parent=p.room, actor=p.mod, participants=2, max_rooms=2, force_join=True
    )
    return p, rooms


def test_breakout_rooms_are_listed_with_members_and_invitations(staff, sent):
    _, rooms = _rooms()
    page = staff.get("/admin/breakouts/breakoutroom/").content.decode()
    assert "breakout 1 of" in page and "breakout 2 of" in page
    detail = staff.get(f"/admin/breakouts/breakoutroom/{rooms[0].pk}/change/").content.decode()
    assert "members" in detail.lower() and "breakout invitations" in detail.lower()
    members = [
        pid for pid, where in membership(rooms[0].parent).items() if where == str(rooms[0].pk)
    ]
    for pid in members:
        assert pid in detail
    assert staff.get("/admin/breakouts/breakoutinvitation/").status_code == 200
    # Only breakout rooms are listed (not their parent), and they are not deleted here.
    assert "2 breakout rooms" in page
    assert staff.get(f"/admin/breakouts/breakoutroom/{rooms[0].pk}/delete/").status_code == 403


def test_clear_action_returns_everyone_through_the_service(staff, sent):
    p, rooms = _rooms()
    sent.items.clear()
    resp = staff.post(
        "/admin/breakouts/breakoutroom/",
        {"action": "clear_all", "_selected_action": [str(rooms[0].pk)]},
    )
    assert resp.status_code == 302
    assert all(v is None for v in membership(p.room).values())
    assert Room.objects.filter(parent=p.room).count() == 2
    assert to_person(sent, p.room, "p0") == [
        {"type": "breakout-left", "room_id": to_person(sent, p.room, "p0")[0]["room_id"],
         "reason": "cleared"}
    ]  # fmt: skip


def test_return_members_and_destroy_actions(staff, sent):
    p, rooms = _rooms()
    staff.post(
        "/admin/breakouts/breakoutroom/",
        {"action": "return_members", "_selected_action": [str(rooms[1].pk)]},
    )
    where = membership(p.room)
    assert [v for v in where.values() if v == str(rooms[1].pk)] == []
    assert len([v for v in where.values() if v == str(rooms[0].pk)]) == 2
    p.room.paused = True
    p.room.save(update_fields=["paused"])
    staff.post(
        "/admin/breakouts/breakoutroom/",
        {"action": "destroy_all", "_selected_action": [str(rooms[0].pk)]},
    )
    assert not Room.objects.filter(parent=p.room).exists()
    assert p.refresh().paused is False
    assert AuditEvent.objects.filter(actor="staff:ops", action="breakout-destroy-all").exists()
