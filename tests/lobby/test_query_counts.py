"""What a knock, a connect and a decision cost in queries (issue 13), and the caches that make
them cheaper without changing an answer (lobby/cache.py).

Query counts are pinned (timings are measured by ``manage.py loadtest``, never asserted): a
change that adds a query to a hot path shows up here. The caches are only on where they are
exact — the embedded default, one process — and every change to a room or a token, through any
surface, is seen by the very next call.
"""

from __future__ import annotations

import os

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from lobby import cache, services
from lobby.errors import RoomNotFound, TokenRevoked
from lobby.models import EntryRequest, Room
from lobby.services import knocks
from lobby.tokens import revoke_token, verify_token
from tests.factories import conn, make_room, make_token

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The pinned statements are SQLite's (BEGIN IMMEDIATE is its room lock; PostgreSQL adds a
    # SELECT ... FOR UPDATE) and the caches are the embedded default's: scripts/test runs this
    # module in its first pass, on the embedded default, not in the PostgreSQL + Redis pass.
    pytest.mark.skipif(
        bool(os.environ.get("DATABASE_URL")),
        reason="SQLite's statements and the embedded default's caches (first pass of scripts/test)",
    ),
]

REDIS_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]},
    }
}


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=60)


def queries(fn, *args, **kwargs):
    with CaptureQueriesContext(connection) as ctx:
        out = fn(*args, **kwargs)
    return out, [q["sql"] for q in ctx.captured_queries]


def sql_of(captured: list[str]) -> list[str]:
    """The statement kinds, e.g. ['BEGIN', 'SELECT', 'INSERT', ...] (for readable failures)."""
    return [s.split()[0].upper() for s in captured]


# Query counts --------------------------------------------------------------------------------


def test_a_token_connect_costs_no_query_once_room_and_token_were_seen(clinic):
    token = make_token(sub="pat", name="Pat", join_policy={"mode": "ask"})
    _, cold = queries(services.preauth, room_name="clinic", token=token)
    assert len(cold) == 1, cold  # the room and the token's revocation, in one statement
    assert "EXISTS" in cold[0].upper() and "lobby_meetingtoken" in cold[0], cold
    access, warm = queries(services.preauth, room_name="clinic", token=token)
    assert access.level == "lobby"
    assert warm == []


@override_settings(CHANNEL_LAYERS=REDIS_LAYERS)
def test_with_a_shared_layer_every_connect_reads_room_and_revocation(clinic):
    token = make_token(sub="pat", join_policy={"mode": "ask"})
    assert not cache.enabled()
    for _ in range(2):
        _, captured = queries(services.preauth, room_name="clinic", token=token)
        assert len(captured) == 1, captured  # room + revocation in one statement


@pytest.fixture
def undelivered(monkeypatch):
    """Events are handed over but not delivered: only the service's own statements count
    (delivery reads a queue order, on a server at most once per ``queue_interval``)."""
    from lobby import events

    monkeypatch.setattr(events, "_send_now", lambda group, message: None)

    async def nothing(batch):
        return None

    monkeypatch.setattr(events, "_send_batch", nothing)


API = services.Actor.api("ops")


KNOCK = [
    "BEGIN",  # BEGIN IMMEDIATE: on SQLite also the room lock (no lock query)
    # One read of what the knock decides on (lobby/services/knocks.py, _read_before_knock): the
    # queue before it (its place), the guest's own pending knock (replaced by this one), the
    # rate limit; and the active webhook endpoints only when lobby/cache.py does not hold them.
    "SELECT",
    "INSERT",  # the knock
    "INSERT",  # the audit row
    "COMMIT",
]


def earlier_knock() -> None:
    """Someone knocked before (the endpoints a knock reports to are read once, then kept)."""
    plan = services.join_plan(room_name="clinic", token=None, name="Earlier")
    services.entry_request_knock(plan=plan, conn=conn())


def test_a_token_knock_is_one_transaction_of_these_statements(clinic, undelivered):
    earlier_knock()
    token = make_token(sub="pat", name="Pat", join_policy={"mode": "ask"})
    services.preauth(room_name="clinic", token=token)  # as a socket does first: warms the caches
    plan, planned = queries(services.join_plan, room_name="clinic", token=token)
    assert planned == []
    w, captured = queries(services.entry_request_knock, plan=plan, conn=conn(address="10.0.0.1"))
    assert sql_of(captured) == KNOCK, captured
    assert (w.position, w.total) == (2, 2)


def test_a_guest_without_a_token_skips_the_look_for_its_own_pending_knock(clinic, undelivered):
    # Its participant id was made up for this knock: it cannot have another one pending.
    earlier_knock()
    services.preauth(room_name="clinic", token=None)
    plan = services.join_plan(room_name="clinic", token=None, name="Sam")
    _, captured = queries(services.entry_request_knock, plan=plan, conn=conn(address="10.0.0.1"))
    assert sql_of(captured) == KNOCK, captured
    assert '"participant_id" =' not in captured[1], captured[1]


def test_the_endpoints_are_read_in_the_knocks_read_when_not_cached(clinic, undelivered, settings):
    from lobby.models import WebhookDelivery
    from lobby.webhooks import services as hooks

    settings.ANTEROOM_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    earlier_knock()  # caches the (no) endpoints
    hook, _ = hooks.webhook_create(url="http://127.0.0.1:9/hook", events=["knock.created"])
    plan = services.join_plan(room_name="clinic", token=None, name="Sam")
    _, captured = queries(services.entry_request_knock, plan=plan, conn=conn(address="10.0.0.1"))
    # The event and its delivery: two more INSERTs, and no query of its own for the endpoints.
    assert sql_of(captured) == [*KNOCK[:-1], "INSERT", "INSERT", "COMMIT"], captured
    assert "lobby_webhookendpoint" in captured[1]
    assert WebhookDelivery.objects.filter(endpoint_id=hook.pk).count() == 1
    plan = services.join_plan(room_name="clinic", token=None, name="Kim")
    _, captured = queries(services.entry_request_knock, plan=plan, conn=conn(address="10.0.0.2"))
    assert "lobby_webhookendpoint" not in captured[1]  # kept since (no endpoint changed)
    assert WebhookDelivery.objects.filter(endpoint_id=hook.pk).count() == 2


@override_settings(CHANNEL_LAYERS=REDIS_LAYERS)
def test_uncached_the_wait_estimate_is_read_in_the_knocks_read(clinic, undelivered):
    assert not cache.enabled()
    plan = services.join_plan(room_name="clinic", token=None, name="Sam")
    w, captured = queries(
        services.entry_request_knock_for_socket, plan=plan, conn=conn(address="10.0.0.1")
    )
    assert sql_of(captured) == KNOCK, captured  # and no query after the commit
    assert "'admitted'" in captured[1]
    assert w.seconds_per_guest is None


def test_an_appointment_window_costs_a_knock_one_read_of_the_window(db, undelivered):
    # The window is read again under the room lock (services/appointments.py); a room read
    # without one (above) costs nothing more.
    from datetime import timedelta

    from lobby import clock

    make_room(
        "clinic",
        privacy="private",
        enable_knocking=True,
        opens_at=clock.now() + timedelta(minutes=10),
        closes_at=clock.now() + timedelta(minutes=40),
    )
    earlier_knock()
    token = make_token(sub="pat", name="Pat", join_policy={"mode": "ask"})
    services.preauth(room_name="clinic", token=token)
    plan = services.join_plan(room_name="clinic", token=token)
    w, captured = queries(services.entry_request_knock, plan=plan, conn=conn(address="10.0.0.1"))
    assert sql_of(captured) == [*KNOCK[:1], "SELECT", *KNOCK[1:]], captured
    assert w.request.expires_at == plan.room.closes_at


def test_the_queue_place_counts_who_is_ahead(clinic):
    places = []
    for name in ("A", "B", "C"):
        plan = services.join_plan(room_name="clinic", token=None, name=name)
        w = services.entry_request_knock(plan=plan, conn=conn(address="10.0.0.1"))
        places.append((w.position, w.total))
    assert places == [(1, 1), (2, 2), (3, 3)]
    first = EntryRequest.objects.order_by("requested_at").first()
    assert first is not None
    assert knocks.queue_place(first) == (1, 3)


# The room cache ------------------------------------------------------------------------------


def test_a_room_change_is_seen_by_the_next_knock(clinic):
    assert services.get_room("clinic").knock_ttl == 60
    services.room_update(room=services.get_room("clinic"), actor=API, knock_ttl=120)
    _, captured = queries(services.get_room, "clinic")
    assert len(captured) == 1  # forgotten on save: read again
    assert services.get_room("clinic").knock_ttl == 120
    plan = services.join_plan(room_name="clinic", token=None, name="Pat")
    w = services.entry_request_knock(plan=plan, conn=conn(address="10.0.0.1"))
    assert (w.request.expires_at - w.request.requested_at).total_seconds() == 120


def test_privacy_changed_by_a_plain_save_applies_to_the_next_join(clinic):
    # The admin's change form, a shell, a data migration: anything that saves the model.
    assert services.preauth(room_name="clinic", token=None).level == "lobby"
    room = Room.objects.get(name="clinic")
    room.privacy = "public"
    room.save()
    assert services.preauth(room_name="clinic", token=None).level == "full"


def test_a_deleted_room_is_not_found_at_once(clinic):
    services.get_room("clinic")
    services.room_delete(room=services.get_room("clinic"), actor=API)
    with pytest.raises(RoomNotFound):
        services.get_room("clinic")


def test_a_cached_room_is_a_copy(clinic):
    a = services.get_room("clinic")
    a.knock_ttl = 999  # a caller changing its instance does not change the cache
    assert services.get_room("clinic").knock_ttl == 60


def test_a_room_read_inside_a_rolled_back_transaction_is_not_kept(clinic):
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        Room.objects.filter(name="clinic").update(knock_ttl=300)
        assert services.get_room("clinic").knock_ttl == 300  # its own uncommitted change
        raise Rollback
    assert services.get_room("clinic").knock_ttl == 60


def test_entries_lapse_after_the_ttl_for_edits_made_elsewhere(clinic, monkeypatch):
    services.get_room("clinic")
    Room.objects.filter(name="clinic").update(knock_ttl=30)  # SQL: no signal
    assert services.get_room("clinic").knock_ttl == 60
    now = cache.time.monotonic()
    monkeypatch.setattr(cache.time, "monotonic", lambda: now + cache.TTL + 0.1)
    assert services.get_room("clinic").knock_ttl == 30


# The revocation cache ------------------------------------------------------------------------


def test_a_revoked_token_is_refused_by_the_very_next_check(clinic):
    token = make_token(sub="pat", join_policy={"mode": "ask"})
    claims = verify_token(token, room_name="clinic")
    _, captured = queries(verify_token, token, room_name="clinic")
    assert captured == []  # cached: not revoked
    assert revoke_token(jti=claims.jti or "")
    with pytest.raises(TokenRevoked):
        verify_token(token, room_name="clinic")
    with pytest.raises(TokenRevoked):
        services.preauth(room_name="clinic", token=token)


def test_a_revoked_moderator_stops_moderating_at_once(clinic):
    token = make_token(sub="dr", name="Dr", owner=True)
    j = services.participant_join(
        plan=services.join_plan(room_name="clinic", token=token), conn=conn(address="10.0.0.1")
    )
    actor = services.Actor(
        by=j.participant.participant_id,
        can_moderate=True,
        participant_id=j.participant.participant_id,
        token_jti=j.participant.token_jti,
    )
    services.require_moderator(actor)
    _, captured = queries(services.require_moderator, actor)
    assert captured == []
    services.token_revoke(jti=j.participant.token_jti)
    with pytest.raises(TokenRevoked):
        services.require_moderator(actor)


def test_a_revocation_rolled_back_is_not_remembered(clinic):
    token = make_token(sub="pat", join_policy={"mode": "ask"})
    claims = verify_token(token, room_name="clinic")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        revoke_token(jti=claims.jti or "")
        with pytest.raises(TokenRevoked):
            verify_token(token, room_name="clinic")
        raise Rollback
    assert verify_token(token, room_name="clinic").jti == claims.jti


# Sockets: the session's user is read only for a staff join -----------------------------------


async def test_a_token_socket_never_reads_the_session_user(clients, monkeypatch):
    from asgiref.sync import sync_to_async
    from channels import auth
    from django.contrib.auth import get_user_model

    # The function both Channels' AuthMiddleware and lobby/runtime/auth.py run to load a user.
    loads: list[int] = []
    real = auth.get_user.func  # type: ignore[attr-defined]

    def counting(scope):
        loads.append(1)
        return real(scope)

    monkeypatch.setattr(auth.get_user, "func", counting)
    await sync_to_async(make_room)("clinic", privacy="private", enable_knocking=True)
    token = await sync_to_async(make_token)(sub="pat", name="Pat", join_policy={"mode": "ask"})
    guest = await clients(headers=[(b"cookie", b"sessionid=whatever")])
    ack = await guest.request("preauth", rid="p", token=token)
    assert ack["ok"] is True and ack["data"]["level"] == "lobby"
    ack = await guest.request("join", rid="j", token=token)
    assert ack["ok"] is True
    assert loads == []  # Channels' AuthMiddlewareStack read it at every handshake
    # A staff join reads it (and, signed out, is refused as before).
    await sync_to_async(get_user_model().objects.create_user)("ops", password="x", is_staff=True)
    staff = await clients()
    ack = await staff.request("join", rid="s", staff=True)
    assert ack["ok"] is False and ack["error"]["code"] == "INVALID_PERMISSIONS"
    assert loads == [1]


async def test_a_handshake_is_accepted_while_the_orm_thread_is_busy():
    """Why the idle load test lost guests: Channels' AuthMiddleware read the session's user on
    the process's single ORM thread *before* the consumer could accept, so under a backlog of
    knocks a handshake waited behind them past Daphne's 5 s handshake timeout (WSREJECT, or a
    dropped connection). Now a handshake touches no database."""
    import asyncio
    import time

    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from config.asgi import application
    from tests.support.ws import HOST, ORIGIN

    busy = asyncio.ensure_future(database_sync_to_async(time.sleep)(3))  # the ORM thread
    await asyncio.sleep(0.1)
    comm = WebsocketCommunicator(application, "/ws/rooms/clinic/", headers=[ORIGIN, HOST])
    comm.scope["client"] = ("127.0.0.1", 50000)
    try:
        ok, _ = await comm.connect(timeout=1.5)
        assert ok
        assert not busy.done()  # accepted while the ORM thread was still blocked
    finally:
        await comm.disconnect()
        await busy


async def test_a_warm_preauth_is_answered_without_the_orm_thread(clients, monkeypatch):
    """A connect whose room and token were seen is answered from the caches on the event loop
    (``services.preauth_cached``): no hop to the ORM thread, which may be busy with knocks."""
    import asyncio
    import time

    from asgiref.sync import sync_to_async
    from channels.db import database_sync_to_async

    await sync_to_async(make_room)("clinic", privacy="private", enable_knocking=True)
    token = await sync_to_async(make_token)(sub="pat", join_policy={"mode": "ask"})
    guest = await clients()
    ack = await guest.request("preauth", rid="cold", token=token)  # reads, fills the caches
    assert ack["ok"] is True and ack["data"]["level"] == "lobby"
    busy = asyncio.ensure_future(database_sync_to_async(time.sleep)(3))  # the ORM thread
    await asyncio.sleep(0.1)
    try:
        other = await clients()
        ack = await asyncio.wait_for(other.request("preauth", rid="warm", token=token), 1.5)
        assert ack["ok"] is True and ack["data"]["level"] == "lobby"
        assert not busy.done()  # answered while the ORM thread was still blocked
    finally:
        await busy
    await sync_to_async(revoke_token)(jti=(await sync_to_async(verify_token)(token)).jti or "")
    ack = await (await clients()).request("preauth", rid="revoked", token=token)
    assert ack["ok"] is False and ack["error"]["code"] == "TOKEN_REVOKED"


def test_preauth_cached_answers_only_from_the_caches(clinic):
    token = make_token(sub="pat", join_policy={"mode": "ask"})
    cache.clear()
    assert services.preauth_cached(room_name="clinic", token=token) is None  # nothing cached
    cache.put_room(clinic)
    tokenless = services.preauth_cached(room_name="clinic", token=None)
    assert tokenless is not None and tokenless.level == "lobby"
    assert services.preauth_cached(room_name="clinic", token=token) is None  # revocation unknown
    services.preauth(room_name="clinic", token=token)
    _, captured = queries(services.preauth_cached, room_name="clinic", token=token)
    assert captured == []
    warm = services.preauth_cached(room_name="clinic", token=token)
    assert warm is not None and warm.level == "lobby"
    assert services.preauth_cached(room_name="nope", token=token) is None  # reads: not found
    with pytest.raises(TokenRevoked):
        revoke_token(jti=verify_token(token).jti or "")
        services.preauth_cached(room_name="clinic", token=token)  # forgotten: None, or raises
        services.preauth(room_name="clinic", token=token)
