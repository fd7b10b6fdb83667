"""A new user's first minutes: the demo's staff user, the front page and the error pages."""

from __future__ import annotations

import io
import logging
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import get_resolver

pytestmark = pytest.mark.django_db


def run_demo_staff(*args: str) -> str:
    out = io.StringIO()
    call_command("demo_staff", "--base", "http://127.0.0.1:8123", *args, stdout=out)
    return out.getvalue()


def test_demo_staff_prints_a_working_password_once_and_never_logs_it(caplog):
    caplog.set_level(logging.DEBUG)
    first = run_demo_staff()
    password = re.search(r"shown only this once, write it down\): (\S+)$", first, re.M)
    assert password, first
    assert "Admin: http://127.0.0.1:8123/admin/" in first
    user = get_user_model().objects.get(username="admin")
    assert user.is_staff and user.is_superuser and user.is_active
    assert user.check_password(password.group(1))
    assert password.group(1) not in user.password  # only its hash is stored

    again = run_demo_staff()
    assert "exists" in again and "changepassword admin" in again
    assert password.group(1) not in again
    assert "Password" not in again
    # The same user, the same password: a re-run changes nothing.
    assert get_user_model().objects.count() == 1
    user.refresh_from_db()
    assert user.check_password(password.group(1))
    assert not [r for r in caplog.records if password.group(1) in r.getMessage()]


def test_demo_staff_other_username():
    out = run_demo_staff("--username", "clinic-admin")
    assert "Staff user 'clinic-admin' created" in out
    assert get_user_model().objects.get(username="clinic-admin").is_staff


def test_front_page_says_what_this_server_is_and_links_the_admin(client: Client):
    resp = client.get("/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "A waiting room for video calls" in html
    assert 'href="/admin/"' in html and "Sign in to the admin" in html
    assert 'href="/api/schema/"' in html
    assert "Documentation</a>" not in html  # no ANTEROOM_DOCS_URL: no dead link


def test_front_page_links_configured_docs(client: Client, settings):
    settings.ANTEROOM_DOCS_URL = "https://docs.example/anteroom/"
    html = client.get("/").content.decode()
    assert '<a href="https://docs.example/anteroom/">Documentation</a>' in html


def test_front_page_lists_no_rooms(client: Client):
    from tests.factories import make_room

    make_room("secret-clinic")
    assert "secret-clinic" not in client.get("/").content.decode()


def test_unknown_page_is_a_styled_404(client: Client):
    resp = client.get("/no/such/page")
    assert resp.status_code == 404
    html = resp.content.decode()
    assert "There is no page here" in html and "anteroom.css" in html


def test_server_error_page_is_styled_and_needs_no_context():
    resp = get_resolver().resolve_error_handler(500)(RequestFactory().get("/"))
    assert resp.status_code == 500
    html = resp.content.decode()
    assert "Something went wrong on the server" in html and "anteroom.css" in html


def test_expired_form_is_a_styled_403_and_changes_nothing(client: Client):
    from lobby.models import Room
    from tests.factories import make_room

    make_room("clinic")
    strict = Client(enforce_csrf_checks=True)
    resp = strict.post("/r/clinic/dashboard/", {"action": "pause"})
    assert resp.status_code == 403
    assert "This form has expired" in resp.content.decode()
    assert Room.objects.get(name="clinic").paused is False


def test_the_getting_started_guide_shows_only_images_it_ships():
    import pathlib

    docs = pathlib.Path(__file__).resolve().parents[2] / "docs"
    guide = (docs / "getting-started.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", guide)
    assert len(images) >= 8
    missing = [i for i in images if not (docs / i).is_file()]
    assert missing == []


def test_demo_says_how_long_a_guest_waits_and_how_to_change_it():
    out = io.StringIO()
    call_command("demo", "--base", "http://127.0.0.1:8123", stdout=out)
    text = out.getvalue()
    assert "guests knock and wait up to 60 s for the host" in text
    assert "PATCH /api/v1/rooms/demo" in text
    assert "Owner dashboard: http://127.0.0.1:8123/r/demo/dashboard/?t=" in text
