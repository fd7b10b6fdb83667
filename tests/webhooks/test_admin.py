"""The admin registers webhooks and room alerts through the same checks as REST: the secret is
shown once, a bad URL or event list is a form error and stores nothing; deliveries replay."""

from __future__ import annotations

import base64
import zlib

import pytest
from django.test import Client as HttpClient

from lobby.models import RoomAlerts, WebhookDelivery, WebhookEndpoint
from tests.factories import make_room
from tests.webhooks.helpers import endpoint, knock


@pytest.fixture
def admin_http(db, settings, django_user_model):
    settings.ANTEROOM_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    make_room("clinic", privacy="private", enable_knocking=True)
    root = django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    http = HttpClient()
    http.force_login(root)
    return http


ADD = "/admin/lobby/webhookendpoint/add/"


def _decoded(value: str) -> str:
    """What a signed cookie carries, as anyone holding it can read it (no key needed)."""
    payload = value.split(":", 1)[0]
    compressed = payload.startswith(".")
    raw = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload.lstrip(".")) % 4))
    try:
        return (zlib.decompress(raw) if compressed else raw).decode(errors="replace")
    except zlib.error:
        return ""


def test_adding_a_webhook_shows_its_secret_once(admin_http):
    resp = admin_http.post(
        ADD, {"url": "http://127.0.0.1:9/hook", "events": '["knock.created"]', "active": "on"}
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    ep = WebhookEndpoint.objects.get()
    # The message waits on the server (the session), not in a cookie: Django's default message
    # storage would put the secret in a signed but readable cookie, in every proxy's logs.
    # (compressed and signed there, so decode every cookie the browser now holds)
    for cookie in admin_http.cookies.values():
        assert ep.secret not in cookie.value
        assert ep.secret not in _decoded(cookie.value)
    shown = admin_http.get(resp["Location"]).content.decode()  # the page after Save
    assert ep.secret in shown and "shown once" in shown
    assert ep.created_by == "staff:root" and ep.events == ["knock.created"]
    page = admin_http.get(f"/admin/lobby/webhookendpoint/{ep.pk}/change/").content.decode()
    assert ep.secret not in page


@pytest.mark.parametrize(
    ("url", "events", "code"),
    [
        ("http://10.0.0.1/", '["*"]', "WEBHOOK_URL_NOT_ALLOWED"),
        ("http://169.254.169.254/", '["*"]', "WEBHOOK_URL_NOT_ALLOWED"),
        ("ftp://127.0.0.1/", '["*"]', "WEBHOOK_INVALID_URL"),
        ("http://127.0.0.1:9/", '["nope"]', "WEBHOOK_INVALID_EVENTS"),
        ("http://127.0.0.1:9/", '"knock.created"', "WEBHOOK_INVALID_EVENTS"),
    ],
)
def test_a_bad_webhook_in_the_admin_is_a_form_error(admin_http, url, events, code):
    resp = admin_http.post(ADD, {"url": url, "events": events, "active": "on"})
    assert resp.status_code == 200 and code in resp.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_replaying_deliveries_from_the_admin(admin_http):
    endpoint("http://127.0.0.1:9/a")
    knock()
    d = WebhookDelivery.objects.get()
    resp = admin_http.post(
        "/admin/lobby/webhookdelivery/",
        {"action": "replay", "_selected_action": [d.pk], "post": "yes"},
    )
    assert resp.status_code == 302
    again = WebhookDelivery.objects.exclude(pk=d.pk).get()
    assert again.replay_of == d.id and again.event_id == d.event_id and again.status == "pending"


def test_room_alerts_in_the_admin_are_validated(admin_http):
    from lobby.models import Room

    room = Room.objects.get(name="clinic")
    bad = admin_http.post(
        "/admin/lobby/roomalerts/add/",
        {"room": room.pk, "unattended_after": 60, "contacts": '["not an address"]'},
    )
    assert bad.status_code == 200 and not RoomAlerts.objects.exists()
    ok = admin_http.post(
        "/admin/lobby/roomalerts/add/",
        {
            "room": room.pk,
            "unattended_after": 60,
            "escalate_after": 120,
            "contacts": '["desk@clinic.example"]',
            "escalation_contacts": "[]",
        },
    )
    assert ok.status_code == 302, ok.content.decode()[:3000]
    a = RoomAlerts.objects.get()
    assert (a.unattended_after, a.escalate_after, a.contacts) == (60, 120, ["desk@clinic.example"])


def test_moving_a_webhook_to_another_room_in_the_admin_takes_effect_at_once(admin_http):
    """The admin's room change goes through the webhook service like its other fields: the
    next knock in the old room is not delivered, one in the new room is. (The endpoint cache's
    forgetting on a save is tested in tests/webhooks/test_outbox.py.)"""
    from lobby.models import Room

    make_room("school", privacy="private", enable_knocking=True)
    ep, _ = endpoint("http://127.0.0.1:9/a", room=Room.objects.get(name="clinic"))
    knock("clinic", name="Ada")
    assert WebhookDelivery.objects.filter(endpoint=ep).count() == 1
    school = Room.objects.get(name="school")
    resp = admin_http.post(
        f"/admin/lobby/webhookendpoint/{ep.pk}/change/",
        {
            "url": ep.url,
            "events": '["*"]',
            "description": "",
            "active": "on",
            "room": str(school.pk),
        },
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    assert WebhookEndpoint.objects.get(pk=ep.pk).room_id == school.pk
    knock("clinic", name="Bea")
    assert WebhookDelivery.objects.filter(endpoint=ep).count() == 1
    knock("school", name="Cy")
    assert WebhookDelivery.objects.filter(endpoint=ep).count() == 2
