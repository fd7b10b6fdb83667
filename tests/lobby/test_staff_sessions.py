"""A staff socket moderates only while its Django session lives (lobby/staff_sessions.py).

A dashboard socket opened with a staff session must stop moderating — and close — when that
session ends: the user signs out (here or in another tab), the password changes, the session is
flushed or deleted, or the account is deactivated. Every privileged action re-checks the session;
sign-outs and account changes ring the user's sockets; a periodic check catches the rest.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.models import Session
from django.test import Client as HttpClient

from lobby import services
from lobby.errors import InvalidPermissions, StaffSessionEnded
from lobby.models import EntryRequest
from tests.factories import make_room
from tests.lobby.helpers import adb, closed_with

pytestmark = pytest.mark.django_db(transaction=True)

ENDED = {"code": "STAFF_SESSION_ENDED", "message": "Your staff session has ended; sign in again."}


def _sign_in() -> tuple[HttpClient, bytes]:
    """A real sign-in through the admin form: a session with the password's auth hash."""
    http = HttpClient()
    resp = http.post(
        "/admin/login/",
        {"username": "ops", "password": "correct horse battery", "next": "/admin/"},
        REMOTE_ADDR="10.9.0.1",
    )
    assert resp.status_code == 302, resp.status_code
    return http, f"sessionid={http.cookies['sessionid'].value}".encode()


@pytest.fixture
def ops(db):
    make_room("clinic", privacy="private", enable_knocking=True)
    return get_user_model().objects.create_user(
        "ops", password="correct horse battery", is_staff=True
    )


async def staff_socket(clients, cookie: bytes) -> Any:
    sock = await clients(headers=[(b"cookie", cookie)])
    ack = await sock.request("join", rid="j", staff=True)
    assert ack["ok"] is True, ack
    await sock.expect("joined")
    return sock


async def knock(clients) -> str:
    guest = await clients(client=("10.0.0.5", 4000))
    await guest.send(type="join", name="Pat")
    return (await guest.expect("waiting"))["request"]["id"]


async def status_of(request_id: str) -> str:
    return (await adb(EntryRequest.objects.get)(pk=request_id)).status


async def test_a_live_session_moderates(clients, ops):
    _http, cookie = await adb(_sign_in)()
    sock = await staff_socket(clients, cookie)
    rid = await knock(clients)
    ack = await sock.request("admit", rid="a", request_id=rid)
    assert ack["ok"] is True and ack["data"]["effective"] is True


async def test_a_password_change_closes_the_staff_socket_at_once(clients, ops):
    _http, cookie = await adb(_sign_in)()
    sock = await staff_socket(clients, cookie)
    rid = await knock(clients)

    def change_password() -> None:
        u = get_user_model().objects.get(username="ops")
        u.set_password("a new long passphrase")
        u.save()

    await adb(change_password)()
    assert (await sock.expect("error"))["error"] == ENDED
    assert await closed_with(sock) == 4401
    assert await status_of(rid) == "pending"


async def test_without_a_doorbell_the_next_action_is_refused_and_closes(clients, ops, settings):
    """A password written straight to the database rings no bell: the action still checks."""
    settings.ANTEROOM_STAFF_SESSION_CHECK = 0
    _http, cookie = await adb(_sign_in)()
    sock = await staff_socket(clients, cookie)
    rid = await knock(clients)
    await adb(
        lambda: (
            get_user_model()
            .objects.filter(username="ops")
            .update(password=make_password("changed elsewhere"))
        )
    )()
    ack = await sock.request("admit", rid="a", request_id=rid)
    assert ack["ok"] is False and ack["error"] == ENDED
    assert await closed_with(sock) == 4401
    assert await status_of(rid) == "pending"


async def test_signing_out_closes_that_sessions_socket_not_one_of_another_session(clients, ops):
    http, cookie = await adb(_sign_in)()
    other_http, _other_cookie = await adb(_sign_in)()  # the same user in another browser
    sock = await staff_socket(clients, cookie)
    assert (await adb(other_http.post)("/admin/logout/")).status_code == 200
    # Another session ended: this one is untouched and still moderates.
    rid = await knock(clients)
    ack = await sock.request("admit", rid="a", request_id=rid)
    assert ack["ok"] is True and ack["data"]["effective"] is True
    assert sock.closed is None
    # Its own session signs out (another tab of the same browser): the socket closes.
    assert (await adb(http.post)("/admin/logout/")).status_code == 200
    assert (await sock.expect("error"))["error"] == ENDED
    assert await closed_with(sock) == 4401


async def test_a_flushed_session_is_found_by_the_periodic_check(clients, ops, settings):
    settings.ANTEROOM_STAFF_SESSION_CHECK = 0.2
    _http, cookie = await adb(_sign_in)()
    sock = await staff_socket(clients, cookie)
    await adb(lambda: Session.objects.all().delete())()  # no signal: only the check sees it
    assert (await sock.expect("error", timeout=3))["error"] == ENDED
    assert await closed_with(sock) == 4401


async def test_a_deactivated_account_closes_its_sockets(clients, ops):
    _http, cookie = await adb(_sign_in)()
    sock = await staff_socket(clients, cookie)

    def deactivate() -> None:
        u = get_user_model().objects.get(username="ops")
        u.is_active = False
        u.save(update_fields=["is_active"])

    await adb(deactivate)()
    assert (await sock.expect("error"))["error"] == ENDED
    assert await closed_with(sock) == 4401


async def test_unrelated_account_changes_leave_the_socket_open(clients, ops):
    _http, cookie = await adb(_sign_in)()
    sock = await staff_socket(clients, cookie)

    def touch() -> None:
        u = get_user_model().objects.get(username="ops")
        u.first_name = "Olga"
        u.save()  # rings the bell (all fields saved); the session is still valid
        _sign_in()  # a sign-in elsewhere saves last_login only

    await adb(touch)()
    rid = await knock(clients)
    ack = await sock.request("admit", rid="a", request_id=rid)
    assert ack["ok"] is True and ack["data"]["effective"] is True
    assert sock.closed is None


def test_the_service_refuses_a_staff_actor_whose_session_is_gone(ops):
    http, _cookie = _sign_in()
    key = http.cookies["sessionid"].value
    room = services.get_room("clinic")
    live = services.Actor(
        by="staff:ops", can_moderate=True, staff_user_id=ops.pk, staff_session_key=key
    )
    services.room_set_state(room=room, actor=live, paused=True)
    for session_key in ("", "not-a-session", key + "x"):
        actor = services.Actor(
            by="staff:ops", can_moderate=True, staff_user_id=ops.pk, staff_session_key=session_key
        )
        with pytest.raises(StaffSessionEnded):
            services.room_set_state(room=room, actor=actor, paused=False)
    # Staff status lost while the session lives: refused, as before, with INVALID_PERMISSIONS.
    get_user_model().objects.filter(pk=ops.pk).update(is_staff=False)
    with pytest.raises(InvalidPermissions):
        services.room_set_state(room=room, actor=live, paused=False)
    assert services.get_room("clinic").paused is True
