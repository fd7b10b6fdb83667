"""The WebSocket ``Origin`` check compares scheme, host and port exactly (issue 10 item 1).

A page on another port or scheme of the same host is the same *site*: the browser sends the
staff session cookie with its handshake. Only the origin the handshake was addressed to (or an
explicit ``ANTEROOM_ALLOWED_ORIGINS`` entry, then without cookies) may open a socket.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client as HttpClient

from lobby.runtime.origin import ExactOriginValidator, parse_origin
from tests.factories import make_room, make_token

pytestmark = pytest.mark.django_db(transaction=True)

SERVED = b"127.0.0.1:8000"


@database_sync_to_async
def staff_cookie() -> bytes:
    client = HttpClient()
    client.force_login(get_user_model().objects.create_user("ops", is_staff=True))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def handshake(headers: list[tuple[bytes, bytes]], scheme: str = "ws"):
    """Open ``/ws/rooms/clinic/``; the connected communicator, or None if refused."""
    from config.asgi import application

    comm = WebsocketCommunicator(application, "/ws/rooms/clinic/", headers=headers)
    comm.scope["scheme"] = scheme
    comm.scope["client"] = ("10.7.0.1", 4000)
    connected, _ = await comm.connect()
    if not connected:
        await comm.disconnect()
        return None
    return comm


async def join_as_staff(comm) -> dict:
    await comm.send_json_to({"type": "join", "staff": True, "rid": 1})
    while True:
        frame = await comm.receive_json_from(timeout=3)
        if frame["type"] == "ack":
            return frame


@pytest.fixture
async def clinic():
    await database_sync_to_async(make_room)("clinic", privacy="private", enable_knocking=True)


@pytest.mark.parametrize(
    "origin",
    [
        b"http://127.0.0.1:9999",  # another port of the same host
        b"https://127.0.0.1",  # another scheme (and its default port)
        b"https://127.0.0.1:8000",  # another scheme, same port
        b"http://localhost:8000",  # another host name of this server: another origin
        b"http://127.0.0.1",  # port 80, not 8000
    ],
)
async def test_a_staff_session_from_another_port_or_scheme_is_refused(clinic, origin):
    cookie = await staff_cookie()
    comm = await handshake([(b"origin", origin), (b"host", SERVED), (b"cookie", cookie)])
    assert comm is None, f"{origin!r} opened a socket with the staff cookie"


async def test_the_same_origin_joins_as_staff(clinic):
    cookie = await staff_cookie()
    comm = await handshake(
        [(b"origin", b"http://127.0.0.1:8000"), (b"host", SERVED), (b"cookie", cookie)]
    )
    assert comm is not None
    ack = await join_as_staff(comm)
    assert ack["ok"], ack
    await comm.disconnect()


@pytest.mark.parametrize(
    "headers",
    [
        [],  # no Origin
        [(b"origin", b"null")],
        [(b"origin", b"http://127.0.0.1:8000/")],  # a path: not an origin
        [(b"origin", b"http://user@127.0.0.1:8000")],
        [(b"origin", b"ftp://127.0.0.1:8000")],
        [(b"origin", b"http://127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")],
        [(b"origin", b"http://127.0.0.1:80000")],  # no such port
    ],
)
async def test_a_missing_or_malformed_origin_is_refused(clinic, headers):
    assert await handshake([*headers, (b"host", SERVED)]) is None


@pytest.mark.parametrize(
    "host", [b"evil.example:8000", b"127.0.0.1:8000:1", b"", None, b"127.0.0.1:x"]
)
async def test_a_host_not_in_allowed_hosts_serves_no_origin(clinic, host):
    """DNS rebinding: a page of evil.example resolved to this server is its own origin, and
    that host is not ours."""
    origin = b"http://" + (host or b"")
    headers = [(b"origin", origin)] + ([(b"host", host)] if host is not None else [])
    assert await handshake(headers) is None


async def test_default_ports_are_the_same_origin(clinic):
    comm = await handshake([(b"origin", b"http://127.0.0.1:80"), (b"host", b"127.0.0.1")])
    assert comm is not None
    await comm.disconnect()
    comm = await handshake([(b"origin", b"https://127.0.0.1"), (b"host", b"127.0.0.1:443")], "wss")
    assert comm is not None
    await comm.disconnect()


async def test_a_secure_socket_takes_https_pages_only(clinic):
    host = [(b"host", b"127.0.0.1")]
    assert await handshake([(b"origin", b"http://127.0.0.1"), *host], "wss") is None
    assert await handshake([(b"origin", b"https://127.0.0.1"), *host], "ws") is None


async def test_behind_a_tls_proxy_the_forwarded_scheme_counts(clinic, settings):
    """Daphne behind nginx: plain ``ws`` from nginx, ``X-Forwarded-Proto: https`` trusted when
    ``ANTEROOM_BEHIND_TLS=1`` (``SECURE_PROXY_SSL_HEADER``), ``Host`` as the browser sent it."""
    settings.ALLOWED_HOSTS = ["meet.example.org"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    cookie = await staff_cookie()
    proxy = [(b"host", b"meet.example.org"), (b"x-forwarded-proto", b"https"), (b"cookie", cookie)]
    comm = await handshake([(b"origin", b"https://meet.example.org"), *proxy])
    assert comm is not None
    assert (await join_as_staff(comm))["ok"]
    await comm.disconnect()
    assert await handshake([(b"origin", b"http://meet.example.org"), *proxy]) is None
    # Without the proxy's word the socket is plain http: an https page is another origin.
    settings.SECURE_PROXY_SSL_HEADER = None
    assert await handshake([(b"origin", b"https://meet.example.org"), *proxy]) is None


async def test_an_allowed_other_origin_connects_without_cookies(clinic, settings):
    """An integrator's page on another origin, listed in ANTEROOM_ALLOWED_ORIGINS, may open
    sockets with tokens; the browser's cookies for this server never ride along."""
    settings.ANTEROOM_ALLOWED_ORIGINS = ["https://app.example", "http://127.0.0.1:8000"]
    cookie = await staff_cookie()
    token = await database_sync_to_async(make_token)(room="clinic", sub="olga", owner=True)
    other = [(b"origin", b"https://app.example"), (b"host", SERVED), (b"cookie", cookie)]
    comm = await handshake(other)
    assert comm is not None
    refused = await join_as_staff(comm)
    assert not refused["ok"] and refused["error"]["code"] == "INVALID_PERMISSIONS", refused
    await comm.disconnect()
    comm = await handshake(other)
    await comm.send_json_to({"type": "join", "token": token, "rid": 2})
    while (frame := await comm.receive_json_from(timeout=3))["type"] != "ack":
        pass
    assert frame["ok"], frame
    await comm.disconnect()
    # The served origin is listed too, so the dashboard's staff socket still works.
    comm = await handshake([(b"origin", b"http://127.0.0.1:8000"), (b"host", SERVED), other[2]])
    assert comm is not None and (await join_as_staff(comm))["ok"]
    await comm.disconnect()
    # An explicit list is the whole list: an unlisted origin, even the served one, is refused.
    settings.ANTEROOM_ALLOWED_ORIGINS = ["https://app.example"]
    assert await handshake([(b"origin", b"http://127.0.0.1:8000"), (b"host", SERVED)]) is None


def test_a_malformed_allowed_origins_setting_refuses_to_start(settings):
    settings.ANTEROOM_ALLOWED_ORIGINS = ["https://app.example/path"]
    with pytest.raises(ImproperlyConfigured, match=r"app\.example/path"):
        ExactOriginValidator(lambda *a: None)


def test_origins_parse_exactly():
    assert parse_origin("HTTP://LocalHost") == ("http", "localhost", 80)
    assert parse_origin("https://[::1]:8443") == ("https", "::1", 8443)
    assert parse_origin("https://a.example:443") == parse_origin("https://a.example")
    for junk in ("null", "", "127.0.0.1:8000", "http://", "http://a.example?x", "ws://a.example"):
        assert parse_origin(junk) is None, junk
