"""The Django admin goes through the services: its decisions reach live clients like any other."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient

from breakouts.services import breakout_rooms_create
from lobby import events, services, tokens
from lobby.errors import TokenRevoked
from lobby.models import ApiKey, EntryRequest, MeetingToken, Participant, Room
from tests.factories import make_room, make_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff() -> HttpClient:
    user = get_user_model().objects.create_user(
        "alice", password="correct horse battery staple", is_staff=True, is_superuser=True
    )
    client = HttpClient()
    client.force_login(user)
    return client


def _knock(name: str, browser: str) -> EntryRequest:
    plan = services.join_plan(room_name="clinic", token=None, name=name)
    conn = services.Connection(server_id="s", connection_id=browser, browser_key=browser)
    return services.entry_request_knock(plan=plan, conn=conn).request


def test_admin_admit_and_deny_actions_reach_live_clients(staff, sent):
    room = make_room("clinic", privacy="private", enable_knocking=True)
    a = _knock("A", "a")
    b = _knock("B", "b")
    sent.items.clear()
    url = "/admin/lobby/entryrequest/"
    resp = staff.post(url, {"action": "admitted_selected", "_selected_action": [str(a.pk)]})
    assert resp.status_code == 302
    resp = staff.post(url, {"action": "denied_selected", "_selected_action": [str(b.pk)]})
    assert resp.status_code == 302
    assert sent.frames(events.mods_group(room.pk)) == [
        {
            "type": "entry-resolved",
            "request_id": str(a.pk),
            "outcome": "admitted",
            "by": "staff:alice",
        },
        {
            "type": "entry-resolved",
            "request_id": str(b.pk),
            "outcome": "denied",
            "by": "staff:alice",
        },
    ]
    assert sent.to(events.request_group(a.pk))[0]["frames"][0]["type"] == "joined"
    assert sent.to(events.request_group(b.pk))[0]["close_code"] == 4403
    assert Participant.objects.filter(name="A").exists()
    # Acting again on decided rows changes nothing and sends nothing.
    sent.items.clear()
    staff.post(url, {"action": "denied_selected", "_selected_action": [str(a.pk)]})
    assert EntryRequest.objects.get(pk=a.pk).status == "admitted"
    assert sent.items == []


def test_a_german_speaking_staff_member_reads_the_admin_s_own_words_in_german(staff):
    """The admin's actions, messages and help texts are Anteroom's, so they are in its
    catalogue (locale/de), like Django's own admin strings."""
    make_room("clinic", privacy="private", enable_knocking=True)
    a = _knock("A", "a")
    de = {"accept-language": "de"}
    url = "/admin/lobby/entryrequest/"
    listing = staff.get(url, headers=de).content.decode()
    assert "Ausgewählte Anfragen einlassen" in listing
    assert "Ausgewählte Anfragen ablehnen" in listing
    done = staff.post(
        url,
        {"action": "admitted_selected", "_selected_action": [str(a.pk)]},
        headers=de,
        follow=True,
    )
    assert "1 Anfrage(n) eingelassen; die übrigen waren nicht mehr offen." in done.content.decode()
    form = staff.get("/admin/lobby/room/add/", headers=de).content.decode()
    assert "Beginn des Terminfensters: Wer früher anklopft, wartet darauf." in form
    breakout_rooms_create(
        parent=Room.objects.get(name="clinic"),
        actor=services.Actor.command("tests"),
        participants=2,
        max_rooms=1,
    )
    breakouts = staff.get("/admin/breakouts/breakoutroom/", headers=de).content.decode()
    assert "Alle Breakouts der Haupträume der ausgewählten Räume auflösen" in breakouts
    # English stays the default.
    assert "Admit selected requests" in staff.get(url).content.decode()


def test_admin_revoke_action(staff):
    make_room("clinic")
    token = make_token(sub="pat")
    jti = tokens.verify_token(token).jti
    resp = staff.post("/admin/lobby/meetingtoken/", {"action": "revoke", "_selected_action": [jti]})
    assert resp.status_code == 302
    assert MeetingToken.objects.get(jti=jti).revoked_at is not None
    with pytest.raises(TokenRevoked):
        tokens.verify_token(token)


def test_admin_creates_an_api_key_shown_once(staff):
    resp = staff.post("/admin/lobby/apikey/add/", {"name": "from-admin"}, follow=True)
    assert resp.status_code == 200
    shown = re.search(r"ak_[0-9a-f]+\.[A-Za-z0-9_-]+", resp.content.decode())
    assert shown is not None
    key = shown.group(0)
    row = ApiKey.objects.get(name="from-admin")
    assert row.key_hash == services.hash_secret(key)
    api = HttpClient(headers={"authorization": f"Bearer {key}"})
    assert api.get("/api/v1/rooms").status_code == 200


def test_editing_a_room_in_the_admin_goes_through_the_services(staff, sent):
    from lobby.models import AuditEvent, Room

    room = make_room("clinic", privacy="private", enable_knocking=True)
    sent.items.clear()
    url = f"/admin/lobby/room/{room.pk}/change/"
    form = {
        "privacy": "private",
        "enable_knocking": "on",
        "mode": "group",
        "max_active_talkers": "12",
        "knock_ttl": "120",
        "paused": "on",
        "audio_muted": "",
        "video_muted": "",
        # the inlines' management forms (no rows)
        "participants-TOTAL_FORMS": "0",
        "participants-INITIAL_FORMS": "0",
        "entry_requests-TOTAL_FORMS": "0",
        "entry_requests-INITIAL_FORMS": "0",
    }
    resp = staff.post(url, form)
    assert resp.status_code == 302, resp.content[:500]
    room.refresh_from_db()
    assert (room.paused, room.knock_ttl) == (True, 120)
    updates = [f for f in sent.frames("members.") if f["type"] == "room-updated"]
    assert updates and updates[-1]["room"]["paused"] is True  # live clients heard it
    assert AuditEvent.objects.filter(room=room, action="room-state", actor="staff:alice").exists()
    # A rule of the services holds here too: a bad value is refused and nothing changes.
    Room.objects.filter(pk=room.pk).update(paused=False)
    resp = staff.post(url, {**form, "paused": "", "knock_ttl": "5"})
    room.refresh_from_db()
    assert room.knock_ttl == 120
