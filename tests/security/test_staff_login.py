"""Staff sign-in (the admin login the dashboard links to): throttled per account and per address
by django-axes, with a clear answer saying when to retry, and passwords hashed on a pool of
their own so that a login loop never holds up a knock (issue 10 item 2)."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import timedelta
from typing import ClassVar
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db.models import F

from lobby.models import EntryRequest
from tests.factories import make_room

LOGIN = "/admin/login/"
DASHBOARD = "/r/clinic/dashboard/"
PASSWORD = "correct horse battery staple"
pytestmark = pytest.mark.django_db(transaction=True)  # the password check has its own thread


class CountingHasher(MD5PasswordHasher):
    """A fast hasher that counts how many passwords were hashed (the real one costs ~1 s)."""

    calls = 0

    def verify(self, password: str, encoded: str) -> bool:
        type(self).calls += 1
        return super().verify(password, encoded)

    def encode(self, password: str, salt: str) -> str:
        type(self).calls += 1
        return super().encode(password, salt)


class GateHasher(MD5PasswordHasher):
    """Holds every password check until ``release`` is set; records where and how many at once."""

    entered = threading.Event()
    release = threading.Event()
    threads: ClassVar[list[str]] = []
    active = 0
    most = 0
    lock = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        cls.entered, cls.release = threading.Event(), threading.Event()
        cls.threads, cls.active, cls.most = [], 0, 0

    def verify(self, password: str, encoded: str) -> bool:
        cls = type(self)
        with cls.lock:
            cls.active += 1
            cls.most = max(cls.most, cls.active)
            cls.threads.append(threading.current_thread().name)
        cls.entered.set()
        try:
            assert cls.release.wait(30), "the test never released the password check"
            return super().verify(password, encoded)
        finally:
            with cls.lock:
                cls.active -= 1


@pytest.fixture
def hasher(settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.calls = 0
    return CountingHasher


@pytest.fixture
def staff(hasher):
    return get_user_model().objects.create_user("dr", password=PASSWORD, is_staff=True)


def sign_in(client, username: str, password: str, address: str = "10.1.0.1", next_=DASHBOARD):
    return client.post(
        f"{LOGIN}?{urlencode({'next': next_})}",
        {"username": username, "password": password, "next": next_},
        REMOTE_ADDR=address,
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def is_locked_out(resp) -> bool:
    text = resp.content.decode()
    if resp.status_code != 429:
        return False
    assert "Too many failed sign-ins for this account or from this address." in text
    assert re.search(r"Try again after \d\d:\d\d UTC \(in about \d+ minutes\)", text), text
    return True


def test_ten_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused(
    client, staff, settings
):
    make_room("clinic", privacy="private", enable_knocking=True)
    limit = settings.ANTEROOM_LOGIN_FAILURE_LIMIT
    answers = [sign_in(client, "dr", f"guess-{i}") for i in range(10)]
    for resp in answers[: limit - 1]:
        assert resp.status_code == 200
        assert "Please enter the correct username and password" in resp.content.decode()
    assert all(is_locked_out(r) for r in answers[limit - 1 :])
    hashed = CountingHasher.calls

    right = sign_in(client, "dr", PASSWORD)
    assert is_locked_out(right)
    assert 0 < int(right["Retry-After"]) <= settings.ANTEROOM_LOGIN_COOLOFF
    assert not signed_in(client)
    # A locked-out attempt is refused before any password is hashed.
    assert CountingHasher.calls == hashed
    # The form is still there to retry later, still going back to the dashboard.
    assert 'name="password"' in right.content.decode()
    assert f'value="{DASHBOARD}"' in right.content.decode()
    assert client.get(DASHBOARD).status_code == 403  # still not a moderator


def test_failures_from_one_address_lock_that_address_for_every_account(client, staff, settings):
    limit = settings.ANTEROOM_LOGIN_FAILURE_LIMIT
    for i in range(limit):
        sign_in(client, f"someone-{i}", "guess", address="10.2.0.9")
    assert is_locked_out(sign_in(client, "dr", PASSWORD, address="10.2.0.9"))
    assert not signed_in(client)
    # The account itself is not locked: the same password from elsewhere signs in.
    other = sign_in(client, "dr", PASSWORD, address="10.2.0.10")
    assert other.status_code == 302 and other["Location"] == DASHBOARD
    assert signed_in(client)


def test_failures_for_one_account_from_many_addresses_lock_the_account(client, staff, settings):
    limit = settings.ANTEROOM_LOGIN_FAILURE_LIMIT
    for i in range(limit):
        sign_in(client, "dr", "guess", address=f"10.3.0.{i + 1}")
    assert is_locked_out(sign_in(client, "dr", PASSWORD, address="10.3.1.1"))
    assert not signed_in(client)
    # Another account from a fresh address is not affected.
    get_user_model().objects.create_user("nurse", password=PASSWORD, is_staff=True)
    assert sign_in(client, "nurse", PASSWORD, address="10.3.1.2").status_code == 302


def test_after_the_cool_off_the_right_password_signs_in_and_resets_the_count(
    client, staff, settings
):
    make_room("clinic", privacy="private", enable_knocking=True)
    limit = settings.ANTEROOM_LOGIN_FAILURE_LIMIT
    for i in range(limit):
        sign_in(client, "dr", f"guess-{i}")
    assert is_locked_out(sign_in(client, "dr", PASSWORD))
    # The cool-off passes (the failures age by that much).
    AccessAttempt.objects.update(
        attempt_time=F("attempt_time") - timedelta(seconds=settings.ANTEROOM_LOGIN_COOLOFF + 1)
    )
    resp = sign_in(client, "dr", PASSWORD)
    assert resp.status_code == 302 and resp["Location"] == DASHBOARD
    assert client.get(DASHBOARD).status_code == 200  # a moderator now
    # The success reset the count: limit - 1 new failures do not lock.
    client.logout()
    for i in range(limit - 1):
        assert sign_in(client, "dr", f"again-{i}").status_code == 200
    assert sign_in(client, "dr", PASSWORD).status_code == 302


def test_a_non_staff_user_with_the_right_password_is_refused_like_a_wrong_one(client, hasher):
    get_user_model().objects.create_user("pat", password=PASSWORD, is_staff=False)
    resp = sign_in(client, "pat", PASSWORD)
    assert resp.status_code == 200
    assert "Please enter the correct username and password for a staff account" in (
        resp.content.decode()
    )
    assert not signed_in(client)


def test_sign_ins_beyond_the_queue_are_answered_busy(client, staff, settings):
    settings.ANTEROOM_LOGIN_QUEUE = 0
    resp = sign_in(client, "dr", PASSWORD)
    assert resp.status_code == 503
    assert int(resp["Retry-After"]) > 0
    assert "retry in a few seconds" in resp.content.decode()
    assert not signed_in(client) and AccessAttempt.objects.count() == 0


def test_the_dashboard_sign_in_link_leads_back_to_the_dashboard(client, staff):
    make_room("clinic", privacy="private", enable_knocking=True)
    page = client.get(DASHBOARD)
    assert page.status_code == 403
    link = re.search(r'href="(/admin/login/\?next=[^"]+)"', page.content.decode())
    assert link and link.group(1) == f"{LOGIN}?{urlencode({'next': DASHBOARD})}"
    resp = sign_in(client, "dr", PASSWORD)
    assert resp.status_code == 302 and resp["Location"] == DASHBOARD
    assert client.get(DASHBOARD).status_code == 200


async def asgi_http(method: str, path: str, body: bytes = b"", headers=(), address="10.4.0.1"):
    """One request through ``config.asgi.application``, as Daphne serves it (Django's
    ASGIHandler gives each request its own thread for sync code; the test client does not)."""
    from channels.testing import HttpCommunicator

    from config.asgi import application

    comm = HttpCommunicator(application, method, path, body, [(b"host", b"127.0.0.1"), *headers])
    comm.scope["client"] = (address, 40000)
    comm.scope["server"] = ("127.0.0.1", 8000)
    try:
        resp = await comm.get_response(timeout=60)
    finally:
        await comm.wait(timeout=5)
    return resp["status"], {k.lower(): v for k, v in resp["headers"]}, resp["body"].decode()


async def test_a_knock_is_answered_while_sign_ins_are_hashing(settings, clients):
    """A login loop never holds up a knock, and one process hashes one password at a time."""
    settings.PASSWORD_HASHERS = [f"{__name__}.GateHasher"]
    GateHasher.reset()
    await sync_to_async(make_room)("clinic", privacy="private", enable_knocking=True)
    await sync_to_async(get_user_model().objects.create_user)(
        "dr", password=PASSWORD, is_staff=True
    )
    status, headers, page = await asgi_http("GET", LOGIN)
    assert status == 200, (status, headers, page[:500])
    cookie = headers[b"set-cookie"].split(b";")[0]  # csrftoken=...
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found, page[:500]
    csrf = found.group(1)
    form = urlencode(
        {"username": "dr", "password": PASSWORD, "next": DASHBOARD, "csrfmiddlewaretoken": csrf}
    ).encode()
    post_headers = [(b"cookie", cookie), (b"content-type", b"application/x-www-form-urlencoded")]
    logins = [
        asyncio.create_task(asgi_http("POST", LOGIN, form, post_headers, f"10.4.0.{i}"))
        for i in range(1, 4)
    ]
    try:
        assert await asyncio.to_thread(GateHasher.entered.wait, 20), "no sign-in reached hashing"
        # A guest knocks while the password check is held: the knock is stored and answered.
        guest = await clients("clinic", client=("10.4.1.1", 1))
        assert (await guest.request("join", name="Pat"))["ok"]
        waiting = await guest.expect("waiting")
        assert await sync_to_async(
            EntryRequest.objects.filter(id=waiting["request"]["id"], name="Pat").exists
        )()
        assert not GateHasher.release.is_set() and GateHasher.active == 1
        await asyncio.sleep(0.5)  # time for the other two sign-ins to start hashing, if they could
        assert GateHasher.most == 1, "several passwords hashed at once"
    finally:
        GateHasher.release.set()
        answers = await asyncio.gather(*logins)
    assert [(status, h[b"location"].decode()) for status, h, _ in answers] == [(302, DASHBOARD)] * 3
    assert GateHasher.most == 1
    assert len(GateHasher.threads) == 3
    assert all(name.startswith("anteroom-login") for name in GateHasher.threads), GateHasher.threads


def test_a_superuser_unlocks_an_account_by_deleting_its_failures_in_the_admin(
    client, staff, settings
):
    for i in range(settings.ANTEROOM_LOGIN_FAILURE_LIMIT):
        sign_in(client, "dr", f"guess-{i}")
    assert is_locked_out(sign_in(client, "dr", PASSWORD))
    root = get_user_model().objects.create_superuser("root", password=PASSWORD)
    admin_client = type(client)()
    admin_client.force_login(root)
    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "dr" in listing.content.decode()
    rows = list(AccessAttempt.objects.filter(username="dr").values_list("pk", flat=True))
    resp = admin_client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": rows, "post": "yes"},
    )
    assert resp.status_code == 302 and not AccessAttempt.objects.filter(username="dr").exists()
    assert sign_in(client, "dr", PASSWORD).status_code == 302
    assert signed_in(client)
