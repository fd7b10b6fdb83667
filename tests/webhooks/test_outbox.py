"""The outbox: each event's deliveries are written in the transaction of the change it
reports, for the endpoints that want it, with payloads that carry no secret."""

from __future__ import annotations

import json
import os

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from breakouts import services as breakout_services
from lobby import clock, services
from lobby.models import WebhookDelivery, WebhookEvent
from lobby.tokens import mint_token, verify_token
from lobby.webhooks import services as hooks
from tests.factories import make_room
from tests.webhooks.helpers import endpoint, knock, mod_actor, moderator_joins


@pytest.fixture
def room(db, settings):
    settings.ANTEROOM_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    return make_room("clinic", privacy="private", enable_knocking=True)


def types() -> list[str]:
    return list(
        WebhookEvent.objects.order_by("created_at", "deliveries__seq").values_list(
            "type", flat=True
        )
    )


def bodies(kind: str) -> list[dict]:
    return [json.loads(e.body) for e in WebhookEvent.objects.filter(type=kind)]


def test_no_endpoint_no_rows(room):
    knock()
    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()


def test_each_endpoint_gets_the_events_it_asked_for(room):
    everything, _ = endpoint("http://127.0.0.1:9/a", ["*"])
    knocks, _ = endpoint("http://127.0.0.1:9/b", ["knock.created"])
    breakouts, _ = endpoint("http://127.0.0.1:9/c", ["breakout.*"])
    r = knock()
    services.entry_request_decide(room=room, request_id=r.id, actor=mod_actor(), outcome="admitted")
    breakout_services.breakout_rooms_create(
        parent=room, actor=mod_actor(), participants=2, max_rooms=1
    )
    got = {
        ep.url: sorted(
            WebhookDelivery.objects.filter(endpoint=ep).values_list("event__type", flat=True)
        )
        for ep in (everything, knocks, breakouts)
    }
    assert got == {
        "http://127.0.0.1:9/a": sorted(
            ["knock.created", "knock.resolved", "participant.joined", "breakout.created"]
        ),
        "http://127.0.0.1:9/b": ["knock.created"],
        "http://127.0.0.1:9/c": ["breakout.created"],
    }
    # One event row per event, shared by the endpoints; one delivery id per endpoint.
    assert WebhookEvent.objects.filter(type="knock.created").count() == 1
    assert len(set(WebhookDelivery.objects.values_list("id", flat=True))) == 6


def test_deliveries_roll_back_with_the_change(room):
    endpoint("http://127.0.0.1:9/a")
    with pytest.raises(RuntimeError), transaction.atomic():
        knock()
        assert WebhookDelivery.objects.count() == 1  # written inside the transaction
        raise RuntimeError("the change fails after the service wrote its rows")
    assert not WebhookDelivery.objects.exists() and not WebhookEvent.objects.exists()


def test_an_inactive_endpoint_gets_nothing(room):
    ep, _ = endpoint("http://127.0.0.1:9/a")
    from lobby.webhooks import services as hooks

    hooks.webhook_update(endpoint=ep, active=False)
    knock()
    assert not WebhookDelivery.objects.exists()


def test_every_event_kind_and_its_payload(room):
    endpoint("http://127.0.0.1:9/a")
    mod, _ = moderator_joins()
    r = knock(name="Ada", metadata={"reason": "checkup"})
    services.entry_request_decide(
        room=room, request_id=r.id, actor=mod_actor(), outcome="denied", reason="Not today"
    )
    r2 = knock(name="Bo")
    services.entry_request_cancel(room=room, request_id=r2.id)
    r3 = knock(name="Cy")
    clock.advance(room.knock_ttl + 1)
    services.sweep()
    services.room_set_state(room=room, actor=mod_actor(), paused=True)
    services.participant_leave(room=room, participant_id=mod.participant_id)
    assert types() == [
        "participant.joined",
        "knock.created",
        "knock.resolved",
        "knock.created",
        "knock.resolved",
        "knock.created",
        "knock.resolved",
        "room.updated",
        "participant.left",
    ]
    created = bodies("knock.created")[0]
    assert set(created) == {"id", "type", "created_at", "room", "data"}
    assert created["room"] == "clinic" and created["type"] == "knock.created"
    req = created["data"]["request"]
    assert req["id"] == str(r.id) and req["name"] == "Ada"
    assert req["metadata"] == {"reason": "checkup"} and req["status"] == "pending"
    resolved = {
        b["data"]["request"]["name"]: b["data"]["request"] for b in bodies("knock.resolved")
    }
    assert resolved["Ada"]["status"] == "denied" and resolved["Ada"]["resolved_by"] == "api:tests"
    assert resolved["Bo"]["cancel_reason"] == "aborted"
    assert resolved["Cy"]["cancel_reason"] == "timeout" and r3.id
    assert bodies("room.updated")[0]["data"]["room"]["paused"] is True
    left = bodies("participant.left")[0]["data"]["participant"]
    assert left["participant_id"] == "olga" and left["status"] == "left"


def test_breakout_events_come_from_breakouts_through_the_lobby(room):
    endpoint("http://127.0.0.1:9/a", ["breakout.*"])
    moderator_joins()
    breakout_services.breakout_rooms_create(
        parent=room, actor=mod_actor(), participants=2, max_rooms=2
    )
    breakout_services.breakout_rooms_clear_all(parent=room, actor=mod_actor())
    breakout_services.breakout_rooms_destroy_all(parent=room, actor=mod_actor())
    assert types() == ["breakout.created", "breakout.cleared", "breakout.destroyed"]
    rooms = bodies("breakout.created")[0]["data"]["rooms"]
    assert len(rooms) == 2 and {"id", "number", "capacity", "members"} <= set(rooms[0])
    assert all(b["room"] == "clinic" for b in bodies("breakout.created"))


def test_payloads_carry_no_secret_token_or_resume_key(room):
    ep, secret = endpoint("http://127.0.0.1:9/a")
    token = mint_token(
        room="clinic", sub="guest-7", name="Eve", join_policy={"mode": "ask", "ttl": 60}
    )
    plan = services.join_plan(room_name="clinic", token=token)
    from tests.webhooks.helpers import conn

    c = conn()
    waiting = services.entry_request_knock(plan=plan, conn=c, metadata={"a": 1})
    services.entry_request_decide(
        room=room, request_id=waiting.request.id, actor=mod_actor(), outcome="admitted"
    )
    r = waiting.request
    r.refresh_from_db()
    everything = " ".join(WebhookEvent.objects.values_list("body", flat=True))
    assert "Eve" in everything  # the payloads are there...
    for secret_value in (
        token,
        verify_token(token).jti,
        waiting.resume,
        r.resume_hash,
        r.token_key,
        c.browser_key,
        c.client_address,
        c.connection_id,
        secret,
        ep.secret,
    ):
        assert secret_value and secret_value not in everything, secret_value


# The endpoints a knock asks for: read once, every change seen (lobby/cache.py) ---------------


def embedded_only(test):
    """Committed for real (the cache keeps only what committed), on the embedded default."""
    test = pytest.mark.django_db(transaction=True)(test)
    return pytest.mark.skipif(
        bool(os.environ.get("REDIS_URL")), reason="lobby.cache is on only with the in-memory layer"
    )(test)


def endpoint_reads(fn, *args, **kwargs):
    with CaptureQueriesContext(connection) as ctx:
        out = fn(*args, **kwargs)
    return out, sum('"lobby_webhookendpoint"' in q["sql"] for q in ctx.captured_queries)


def deliveries_of(r) -> list[str]:
    return sorted(
        str(d.endpoint.url)
        for d in WebhookDelivery.objects.filter(event__body__contains=str(r.id))
        .filter(event__type="knock.created")
        .select_related("endpoint")
    )


@embedded_only
def test_a_knock_reads_the_endpoints_once_and_sees_every_change(room):
    _, reads = endpoint_reads(knock, name="A")
    assert reads == 1
    r, reads = endpoint_reads(knock, name="B")
    assert reads == 0 and deliveries_of(r) == []  # none active, and none asked for
    ep, _ = endpoint("http://127.0.0.1:9/new", ["knock.created"])
    r, reads = endpoint_reads(knock, name="C")
    assert reads == 1 and deliveries_of(r) == ["http://127.0.0.1:9/new"]
    hooks.webhook_update(endpoint=ep, active=False)
    assert deliveries_of(knock(name="D")) == []
    hooks.webhook_update(endpoint=ep, active=True)
    assert deliveries_of(knock(name="E")) == ["http://127.0.0.1:9/new"]
    hooks.webhook_delete(endpoint=ep)
    assert deliveries_of(knock(name="F")) == []  # and no delivery to a deleted endpoint


@embedded_only
def test_an_endpoint_made_in_a_rolled_back_transaction_is_not_remembered(room):
    knock(name="A")  # the cache holds "no endpoint"

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        endpoint("http://127.0.0.1:9/gone", ["knock.created"])
        assert deliveries_of(knock(name="B")) == ["http://127.0.0.1:9/gone"]  # its own change
        raise Rollback
    r, reads = endpoint_reads(knock, name="C")  # would fail its commit on a foreign key
    assert deliveries_of(r) == [] and reads == 1
    assert endpoint_reads(knock, name="D")[1] == 0
