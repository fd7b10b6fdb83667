"""The authorization matrix (SPEC §2 moderators, §3, §4, §5): every surface by action by caller,
with the expected outcome written down for each cell.

Surfaces: the WebSocket (every client message type), the REST API (every route and method), the
dashboard's form actions and the Django admin's actions. Each refusal must leave the database as
it was (``snapshot``): the guest still pending, the room not paused, no breakout created. Each
allowed action must really do its thing, so the targets (a pending request, a breakout room, a
participant to move) are created before the cell runs.

The completeness checks at the end derive the live sets at test time (the consumer's message
types, the URL patterns, the dashboard's form actions, the admin actions registered on every
``ModelAdmin``) and fail when one of them has no row here: a new action is not shipped until
somebody has decided who may use it.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from axes.models import AccessAttempt
from channels.db import database_sync_to_async
from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from breakouts import services as breakout_services
from breakouts.models import BreakoutInvitation, HelpRequest
from lobby import clock, consumers, extensions, services, tokens, views
from lobby.api.auth import api_key_create
from lobby.errors import BadRequest, TokenRevoked
from lobby.models import (
    ApiKey,
    AuditEvent,
    EntryRequest,
    MeetingToken,
    Participant,
    Room,
    RoomAlerts,
    WebhookDelivery,
    WebhookEndpoint,
)
from lobby.runtime.process import SERVER_ID
from tests.factories import conn, forge, make_room, make_token, present
from tests.support import ROOT
from tests.support.ws import Client

ROOM = "clinic"
SETUP = services.Actor.staff("setup")  # who prepares targets; never a caller under test


@pytest.fixture(autouse=True)
def _quiet(settings):
    # No background sweeper (tests/lobby/conftest.py explains why); unjoined sockets must not be
    # closed by the 10 s join deadline while a slow, shared machine walks a caller's row.
    settings.ANTEROOM_RUN_SWEEPER = False
    settings.ANTEROOM_JOIN_TIMEOUT = 120


# The world every caller meets ------------------------------------------------------------------


@dataclass
class World:
    """A private, knocking, group-mode room ``clinic`` with a participant ``p0`` present and two
    timed breakout rooms ``b1``, ``b2`` (capacity 2); ``spare`` is a second, empty room."""

    room: Room
    b1: str
    b2: str
    knocks: int = 0
    last: Any = None  # what the last prepared cell targets
    extra: dict[str, Any] = field(default_factory=dict)


def build_world() -> World:
    room = make_room(ROOM, privacy="private", enable_knocking=True)
    make_room("spare")
    present(room, "p0", name="P0", c=conn(SERVER_ID))
    b1, b2 = breakout_services.breakout_rooms_create(
        parent=room, actor=SETUP, participants=2, max_rooms=2, duration=600
    )
    return World(room=room, b1=str(b1.pk), b2=str(b2.pk))


def knock(w: World) -> str:
    """A fresh token-less knock from its own browser and address; returns the request id."""
    w.knocks += 1
    plan = services.join_plan(room_name=ROOM, token=None, name=f"Guest {w.knocks}")
    c = conn(SERVER_ID, browser=f"browser-{w.knocks}", address=f"10.9.0.{w.knocks}")
    w.last = str(services.entry_request_knock(plan=plan, conn=c).request.id)
    return str(w.last)


def status_of(request_id: Any) -> str:
    return str(EntryRequest.objects.get(pk=request_id).status)


def room_state(**flags: bool) -> None:
    services.room_set_state(room=services.get_room(ROOM), actor=SETUP, **flags)


def room_is(**flags: bool) -> bool:
    room = services.get_room(ROOM)
    return all(getattr(room, k) == v for k, v in flags.items())


def breakout_of(pid: str) -> str | None:
    p = Participant.objects.get(room__name=ROOM, room__parent__isnull=True, participant_id=pid)
    return str(p.breakout_id) if p.breakout_id else None


def p0_in_a_breakout(w: World) -> None:
    if breakout_of("p0") is None:
        breakout_services.breakout_move(
            parent=w.room, actor=SETUP, participant_id="p0", room_id=w.b1
        )


def p0_asks_for_help(w: World) -> None:
    p0_in_a_breakout(w)
    if not HelpRequest.objects.filter(participant_id="p0", status="pending").exists():
        breakout_services.breakout_help(parent=w.room, participant_id="p0")


def help_answered() -> bool:
    return HelpRequest.objects.filter(participant_id="p0", status="answered").exists()


def invite(w: World, pid: str | None, room_id: str) -> None:
    if pid is not None:
        breakout_services.breakout_invite(
            parent=w.room, actor=SETUP, room_id=room_id, clients=[pid]
        )


def breakout_count() -> int:
    return Room.objects.filter(parent__name=ROOM).count()


def invited(pid: str, room_id: str) -> bool:
    return BreakoutInvitation.objects.filter(
        breakout__pk=room_id, participant_id=pid, status="pending"
    ).exists()


def snapshot() -> dict[str, Any]:
    """Everything an action could change; a refusal leaves it equal."""

    def rows(model: Any, *fields: str) -> list[tuple[str, ...]]:
        return sorted(tuple(map(str, r)) for r in model.objects.values_list(*fields))

    return {
        "rooms": rows(
            Room,
            "pk",
            "name",
            "parent_id",
            "privacy",
            "enable_knocking",
            "knock_ttl",
            "paused",
            "audio_muted",
            "video_muted",
            "capacity",
            "ends_at",
            "lobby_message",
        ),
        "requests": rows(
            EntryRequest, "pk", "status", "resolved_by", "name", "host_message", "expires_at"
        ),
        "participants": rows(
            Participant, "room_id", "participant_id", "role", "status", "breakout_id", "name"
        ),
        "invitations": rows(BreakoutInvitation, "pk", "participant_id", "status"),
        "help_requests": rows(HelpRequest, "pk", "participant_id", "status", "resolved_by"),
        "tokens": rows(MeetingToken, "jti", "revoked_at"),
        "api_keys": rows(ApiKey, "pk", "revoked"),
        "users": rows(get_user_model(), "pk", "is_staff", "is_active"),
        "groups": rows(Group, "pk"),
        "audit": AuditEvent.objects.count(),
        "webhooks": rows(WebhookEndpoint, "pk", "url", "events", "active", "secret"),
        "deliveries": rows(WebhookDelivery, "pk", "status"),
        "alerts": rows(RoomAlerts, "room_id", "unattended_after", "contacts"),
    }


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [k for k in before if before[k] != after[k]]


def user(username: str, **flags: Any) -> Any:
    return get_user_model().objects.create_user(username, **flags)


def logged_in(username: str, **flags: Any) -> HttpClient:
    client = HttpClient()
    client.force_login(user(username, **flags))
    return client


def expired_owner_token() -> str:
    return forge(
        {
            "room": ROOM,
            "sub": "olga",
            "owner": True,
            "jti": "expired",
            "exp": int(time.time()) - 3600,
        }
    )


def revoked_owner_token() -> str:
    token = make_token(room=ROOM, sub="olga", owner=True)
    jti = tokens.verify_token(token).jti
    assert jti is not None
    tokens.revoke_token(jti=jti)
    return token


# 1. WebSocket ---------------------------------------------------------------------------------

WS_CALLERS = (
    "anonymous",  # connected, no credential, never joined
    "waiting",  # a token-less guest who knocked and is pending
    "participant",  # direct token
    "viewer",  # viewer token
    "owner",  # owner token
    "moderator",  # grant.canModerate token
    "staff",  # Django staff session: {"type": "join", "staff": true}
    "user",  # signed-in non-staff user asking to join as staff
    "other-room",  # an owner token for another room
    "revoked",  # a revoked owner token
    "expired",  # an expired owner token
)

OK, FULL, LOBBY, BYE = "ok", "ok:full", "ok:lobby", "ok/1000"
NJ, IP, BR = "NOT_JOINED", "INVALID_PERMISSIONS", "BAD_REQUEST"
BAD, REV, EXP = "INVALID_TOKEN", "TOKEN_REVOKED", "TOKEN_EXPIRED"

MODERATOR_FRAMES = {
    "entry-requested",
    "entry-updated",
    "entry-resolved",
    "entry-canceled",
    "knock-alert",
    "breakout-created",
    "breakouts-updated",
    "breakout-invited",
    "breakout-invite-rejected",
    "breakout-help-requested",
}
LOBBY_FRAMES = {"ack", "error", "access-state", "waiting", "queue-position", "canceled"}
J_BAD, J_REV, J_EXP = f"{BAD}/4401", f"{REV}/4401", f"{EXP}/4401"  # error, then closed
DENIED = "ACCESS_DENIED/4403"

# Columns: WS_CALLERS, in order.
#          anon waiting participant viewer owner moderator staff user other-room revoked expired
MODERATOR_ONLY = (NJ, NJ, IP, IP, OK, OK, OK, NJ, NJ, NJ, NJ)
IN_THE_ROOM = (NJ, NJ, OK, OK, OK, OK, OK, NJ, NJ, NJ, NJ)
# Rows run top to bottom on one socket per caller (a closed socket is replaced by a fresh,
# unjoined one). ``join`` is a join frame with the caller's credential on its socket as it
# stands: a second join is BAD_REQUEST; the waiting guest has just canceled, so it knocks again.
WS_MATRIX: dict[str, tuple[str, ...]] = {
    "preauth": (LOBBY, LOBBY, FULL, FULL, FULL, FULL, LOBBY, LOBBY, BAD, REV, EXP),
    "update-name": (NJ, OK, OK, OK, OK, OK, OK, NJ, NJ, NJ, NJ),
    "admit": MODERATOR_ONLY,
    "deny": MODERATOR_ONLY,
    "admit-all": MODERATOR_ONLY,
    "deny-all": MODERATOR_ONLY,
    "room-pause": MODERATOR_ONLY,
    "room-resume": MODERATOR_ONLY,
    "room-mute": MODERATOR_ONLY,
    "room-unmute": MODERATOR_ONLY,
    # Media: admitted people only (a viewer answers a publisher's offer; it never offers).
    "signal": (IP, IP, OK, OK, OK, OK, OK, IP, IP, IP, IP),
    "media-update": (IP, IP, OK, OK, OK, OK, OK, IP, IP, IP, IP),
    "breakout-create": MODERATOR_ONLY,
    "breakout-create-and-invite": MODERATOR_ONLY,
    "breakout-invite": MODERATOR_ONLY,
    "breakout-move": MODERATOR_ONLY,
    "breakout-extend": MODERATOR_ONLY,
    "breakout-broadcast": MODERATOR_ONLY,
    "breakout-clear-all": MODERATOR_ONLY,
    "breakout-reject": IN_THE_ROOM,  # with a pending invitation
    "breakout-join": IN_THE_ROOM,  # invited (moderators may visit any breakout)
    "breakout-help": IN_THE_ROOM,  # from inside the breakout just joined
    "breakout-help-answer": MODERATOR_ONLY,  # p0's pending help request
    "breakout-help-join": MODERATOR_ONLY,  # p0 asks again; the caller joins p0's room
    "breakout-leave": IN_THE_ROOM,
    "breakout-destroy-all": MODERATOR_ONLY,
    "participant-remove": MODERATOR_ONLY,  # a fresh participant each time
    "participant-to-lobby": MODERATOR_ONLY,
    "lobby-message": MODERATOR_ONLY,
    "entry-message": MODERATOR_ONLY,  # to a fresh knock
    "cancel": (NJ, OK, NJ, NJ, NJ, NJ, NJ, NJ, NJ, NJ, NJ),
    "join": (LOBBY, LOBBY, BR, BR, BR, BR, BR, IP, J_BAD, J_REV, J_EXP),
    "leave": (BYE, BYE, BYE, BYE, BYE, BYE, BYE, BYE, BYE, BYE, BYE),
}


@dataclass
class Credential:
    token: str | None = None
    pid: str | None = None  # the participant id once in the room
    cookie: str | None = None  # a Django session id
    staff: bool = False  # join with {"staff": true}
    enters: bool = False  # joins (or knocks) before the first row

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"cookie", f"sessionid={self.cookie}".encode())] if self.cookie else []

    def join_fields(self) -> dict[str, Any]:
        if self.staff:
            return {"staff": True}
        return {"token": self.token} if self.token else {"name": "Wanda"}


def credential(caller: str) -> Credential:
    def session(username: str, **flags: bool) -> str:
        return str(logged_in(username, **flags).cookies["sessionid"].value)

    match caller:
        case "anonymous":
            return Credential()
        case "waiting":
            return Credential(enters=True)
        case "participant":
            return Credential(make_token(room=ROOM, sub="pat"), "pat", enters=True)
        case "viewer":
            return Credential(make_token(room=ROOM, sub="vic", viewer=True), "vic", enters=True)
        case "owner":
            return Credential(make_token(room=ROOM, sub="olga", owner=True), "olga", enters=True)
        case "moderator":
            token = make_token(room=ROOM, sub="max", grant={"canModerate": True})
            return Credential(token, "max", enters=True)
        case "staff":
            return Credential(None, "staff:ops", session("ops", is_staff=True), True, True)
        case "user":
            return Credential(cookie=session("pat", is_staff=False), staff=True)
        case "other-room":
            return Credential(make_token(room="elsewhere", sub="olga", owner=True))
        case "revoked":
            return Credential(revoked_owner_token())
        case "expired":
            return Credential(expired_owner_token())
    raise AssertionError(caller)


def ws_prepare(kind: str, w: World, cred: Credential) -> dict[str, Any]:
    """The frame's fields, after setting up what the action acts on, so that an allowed action
    changes something and a refused one provably does not."""
    match kind:
        case "preauth":
            return {"token": cred.token} if cred.token else {}
        case "join":
            return cred.join_fields()
        case "update-name":
            return {"name": "Renamed"}
        case "admit" | "deny":
            return {"request_id": knock(w)}
        case "admit-all" | "deny-all":
            knock(w)
        case "room-pause":
            room_state(paused=False)
        case "room-resume":
            room_state(paused=True)
        case "room-mute":
            room_state(audio_muted=False, video_muted=False)
            return {"audio": True, "video": True}
        case "room-unmute":
            room_state(audio_muted=True, video_muted=True)
            return {"audio": True, "video": True}
        case "signal":
            room_state(paused=False)  # p0 is in the parent's call with the caller
            return {"to": "p0", "data": {"gen": 1, "description": {"type": "answer", "sdp": "v"}}}
        case "media-update":
            return {"audio": True, "video": True, "screen": False}
        case "breakout-create":
            return {"participants": 2, "max_rooms": 1}
        case "breakout-create-and-invite":
            # Admitted guests are participants too: leave room for however many there are.
            return {"participants": 2, "max_rooms": 5}
        case "breakout-invite":
            return {"room_id": w.b1, "clients": ["p0"]}
        case "breakout-move":
            return {"participant_id": "p0", "room_id": w.b1}
        case "breakout-extend":
            return {"room_id": w.b1, "seconds": 60}
        case "breakout-broadcast":
            return {"text": "Five minutes left."}
        case "breakout-help-answer" | "breakout-help-join":
            p0_asks_for_help(w)
            return {"participant_id": "p0"}
        case "breakout-clear-all" | "breakout-destroy-all":
            p0_in_a_breakout(w)
        case "breakout-reject":
            invite(w, cred.pid, w.b2)
            return {"room_id": w.b2}
        case "breakout-join":
            invite(w, cred.pid, w.b1)
            return {"room_id": w.b1}
        case "participant-remove" | "participant-to-lobby":
            return {"participant_id": someone(w)}
        case "lobby-message":
            w.knocks += 1
            return {"text": f"Running late ({w.knocks})", "extend_minutes": 5}
        case "entry-message":
            return {"request_id": knock(w), "text": "Forms at the desk"}
    return {}


def someone(w: World) -> str:
    """A fresh participant in the room, for an action that ends their presence."""
    w.knocks += 1
    sub = f"target-{w.knocks}"
    return present(w.room, sub, name=sub.upper(), c=conn(SERVER_ID)).participant_id


def is_present(pid: str) -> bool:
    return Participant.objects.filter(room__name=ROOM, participant_id=pid, status="active").exists()


def waiting_again(pid: str) -> bool:
    return EntryRequest.objects.filter(participant_id=pid, status="pending").exists()


async def closed_soon(sock: Client, wait: float = 0.25) -> int | None:
    """The close code if the server closes the socket within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        if await sock.nothing(left):
            return None
        frame = await sock.recv()
        if frame["type"] == "__closed__":
            return int(frame["code"])
    return None


async def ask(sock: Client, kind: str, rid: int, fields: dict[str, Any]) -> str:
    """Send one frame and name what happened: ``ok`` (``ok:<level>`` for preauth and join), the
    error code, plus ``/<close code>`` when the server then closes the socket."""
    await sock.send(type=kind, rid=rid, **fields)
    while True:
        frame = await sock.recv()
        if frame["type"] == "__closed__":
            return f"closed/{frame['code']}"
        if frame["type"] == "ack" and frame["rid"] == rid:
            break
    if frame["ok"]:
        data = frame["data"]
        outcome = OK
        if kind in ("preauth", "join") and "level" in data:
            outcome = f"ok:{data['level']}"
        elif kind in ("admit", "deny") and not data["effective"]:
            outcome = "ok:no-op"
        elif kind in ("admit-all", "deny-all") and not data["count"]:
            outcome = "ok:none"
    else:
        outcome = frame["error"]["code"]
    if kind in ("join", "leave") and (code := await closed_soon(sock)) is not None:
        outcome += f"/{code}"
    return outcome


async def until(sock: Client, kind: str) -> None:
    while not any(f["type"] == kind for f in sock.seen):
        await sock.recv()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("caller", WS_CALLERS)
async def test_websocket_matrix(clients, caller):
    adb = database_sync_to_async
    w = await adb(build_world)()
    cred = await adb(credential)(caller)

    sock: Client = await clients(ROOM, headers=cred.headers)
    if cred.enters:
        ack = await sock.request("join", rid="enter", **cred.join_fields())
        assert ack["ok"], ack
    socks = [sock]
    got: dict[str, str] = {}
    changed: dict[str, list[str]] = {}
    for rid, kind in enumerate(WS_MATRIX):
        if sock.closed is not None:
            sock = await clients(ROOM, headers=cred.headers)
            socks.append(sock)
        fields = await adb(ws_prepare)(kind, w, cred)
        before = await adb(snapshot)()
        got[kind] = await ask(sock, kind, rid, fields)
        if not got[kind].startswith(OK):
            if diff := changes(before, await adb(snapshot)()):
                changed[kind] = diff
        if kind == "cancel" and got[kind] == OK:
            await until(sock, "canceled")  # the socket is a fresh one again after this
    column = WS_CALLERS.index(caller)
    wrong = {
        kind: {"expected": row[column], "got": got[kind]}
        for kind, row in WS_MATRIX.items()
        if got[kind] != row[column]
    }
    assert wrong == {}
    assert changed == {}, "a refused frame changed the database"
    # What each caller heard: moderator-only frames reach moderators only, and a caller who is
    # not in the room hears nothing about it (SPEC §3: "A guest in the lobby receives nothing").
    for s in socks:
        while s.closed is None and not await s.nothing(0.1):
            await s.recv()
    heard = {f["type"] for s in socks for f in s.seen}
    if caller in ("owner", "moderator", "staff"):
        assert {"entry-requested", "breakouts-updated", "room-updated"} <= heard
    elif caller in ("participant", "viewer"):
        assert "room-updated" in heard and heard & MODERATOR_FRAMES == set()
    else:
        assert heard <= LOBBY_FRAMES


# Who may join at all: SPEC §2's access table, per room kind and credential, over the socket.
JOIN_CREDENTIALS = (
    "none",
    "direct",
    "ask",
    "viewer",
    "owner",
    "moderator",
    "staff",
    "user",
    "other-room",
    "revoked",
    "expired",
)
# Columns: JOIN_CREDENTIALS, in order.
#   none  direct ask viewer owner moderator staff user other-room revoked expired
JOIN_MATRIX: dict[str, tuple[str, ...]] = {
    "public": (FULL, FULL, LOBBY, FULL, FULL, FULL, FULL, IP, J_BAD, J_REV, J_EXP),
    "private-knocking": (LOBBY, FULL, LOBBY, FULL, FULL, FULL, FULL, IP, J_BAD, J_REV, J_EXP),
    "private-closed": (DENIED, FULL, LOBBY, FULL, FULL, FULL, FULL, IP, J_BAD, J_REV, J_EXP),
}
ROOM_KINDS: dict[str, dict[str, Any]] = {
    "public": {"privacy": "public"},
    "private-knocking": {"privacy": "private", "enable_knocking": True},
    "private-closed": {"privacy": "private", "enable_knocking": False},
}


def join_credential(kind: str) -> Credential:
    match kind:
        case "none":
            return Credential()
        case "direct":
            return Credential(make_token(room=ROOM, sub="pat"))
        case "ask":
            return Credential(make_token(room=ROOM, sub="ask", join_policy={"mode": "ask"}))
    return credential(kind)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("room_kind", ROOM_KINDS)
async def test_who_may_join(clients, room_kind):
    await database_sync_to_async(make_room)(ROOM, **ROOM_KINDS[room_kind])
    got = {}
    for rid, kind in enumerate(JOIN_CREDENTIALS):
        cred = await database_sync_to_async(join_credential)(kind)
        sock = await clients(ROOM, headers=cred.headers)
        got[kind] = await ask(sock, "join", rid, cred.join_fields())
        await sock.close()
    assert got == dict(zip(JOIN_CREDENTIALS, JOIN_MATRIX[room_kind], strict=True))


@pytest.mark.django_db(transaction=True)
async def test_a_staff_session_from_another_origin_is_refused_at_the_handshake():
    """Cross-site WebSocket hijacking: the staff session cookie rides along, the Origin does not
    match ALLOWED_HOSTS, and the handshake is refused before any frame."""
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    await database_sync_to_async(make_room)(ROOM)
    cred = await database_sync_to_async(credential)("staff")
    comm = WebsocketCommunicator(
        application,
        f"/ws/rooms/{ROOM}/",
        headers=[(b"origin", b"https://evil.example"), *cred.headers],
    )
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()


# 2. REST -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rest:
    """One route and method: the status with a valid API key, the body, what to set up first,
    and what must be true afterwards."""

    status: int
    body: Callable[[World], Any] | None = None
    prep: Callable[[World], None] | None = None
    effect: Callable[[World], bool] | None = None
    room: str = ROOM


def _audit(action: str) -> Callable[[World], bool]:
    return lambda w: AuditEvent.objects.filter(actor="api:ops", action=action).exists()


def _webhook(w: World) -> None:
    """A registered endpoint with one delivery in its log (never sent: no sweeper runs)."""
    from lobby.webhooks import services as hooks

    ep = WebhookEndpoint.objects.create(
        url="https://93.184.215.14/anteroom",
        events=["knock.created"],
        secret="whsec_matrix",
        created_at=clock.now(),
    )
    knock(w)
    d = WebhookDelivery.objects.filter(endpoint=ep).first()
    assert d is not None
    w.extra["webhook"], w.extra["delivery"] = str(ep.pk), str(d.id)
    assert hooks.get_endpoint(ep.pk) == ep


def rest_path(route: str, cell: Rest, w: World) -> str:
    """The URL of a matrix cell: its room, and the ids of the world's rows."""
    return "/" + (
        route.replace("<str:name>", cell.room)
        .replace("<str:request_id>", str(w.last))
        .replace("<str:webhook_id>", w.extra.get("webhook", ""))
        .replace("<str:delivery_id>", w.extra.get("delivery", ""))
    )


R = "api/v1/rooms/<str:name>"
W = "api/v1/webhooks/<str:webhook_id>"
REST_MATRIX: dict[tuple[str, str], Rest] = {
    ("GET", "api/v1/rooms"): Rest(200),
    ("POST", "api/v1/rooms"): Rest(
        200,
        body=lambda w: {"name": "fresh", "privacy": "private"},
        effect=lambda w: Room.objects.filter(name="fresh").exists(),
    ),
    ("GET", R): Rest(200),
    ("PATCH", R): Rest(
        200,
        body=lambda w: {"properties": {"knock_ttl": 90}},
        effect=lambda w: services.get_room(ROOM).knock_ttl == 90,
    ),
    ("DELETE", R): Rest(
        200, room="spare", effect=lambda w: not Room.objects.filter(name="spare").exists()
    ),
    ("GET", f"{R}/entry-requests"): Rest(200),
    ("POST", f"{R}/entry-requests/<str:request_id>/admit"): Rest(
        200, effect=lambda w: status_of(w.last) == "admitted"
    ),
    ("POST", f"{R}/entry-requests/<str:request_id>/deny"): Rest(
        200, effect=lambda w: status_of(w.last) == "denied"
    ),
    ("GET", f"{R}/participants"): Rest(200),
    ("GET", f"{R}/audit"): Rest(200),
    ("GET", f"{R}/analytics"): Rest(200),
    ("POST", "api/v1/meeting-tokens"): Rest(
        200,
        body=lambda w: {"properties": {"room_name": ROOM, "is_owner": True}},
        effect=lambda w: MeetingToken.objects.filter(issued_by="api:ops").exists(),
    ),
    ("POST", "api/v1/meeting-tokens/decode"): Rest(200, body=lambda w: {"token": w.extra["token"]}),
    ("POST", "api/v1/meeting-tokens/revoke"): Rest(
        200,
        body=lambda w: {"jti": w.extra["jti"]},
        effect=lambda w: MeetingToken.objects.get(jti=w.extra["jti"]).revoked_at is not None,
    ),
    ("GET", f"{R}/breakouts"): Rest(200),
    ("POST", f"{R}/breakouts"): Rest(
        201,
        body=lambda w: {"participants": 2, "max_rooms": 1},
        effect=lambda w: breakout_count() == 3,
    ),
    ("POST", f"{R}/breakouts/invite"): Rest(
        200,
        body=lambda w: {"room_id": w.b1, "clients": ["p0"]},
        effect=lambda w: invited("p0", w.b1),
    ),
    ("POST", f"{R}/breakouts/move"): Rest(
        200,
        body=lambda w: {"participant_id": "p0", "room_id": w.b1},
        effect=lambda w: breakout_of("p0") == w.b1,
    ),
    ("POST", f"{R}/breakouts/broadcast"): Rest(
        200, body=lambda w: {"text": "Five minutes left."}, effect=_audit("breakout-broadcast")
    ),
    ("POST", f"{R}/breakouts/extend"): Rest(
        200, body=lambda w: {"room_id": w.b1, "seconds": 60}, effect=_audit("breakout-extend")
    ),
    ("POST", f"{R}/breakouts/clear"): Rest(
        200, prep=p0_in_a_breakout, effect=lambda w: breakout_of("p0") is None
    ),
    ("POST", f"{R}/breakouts/destroy"): Rest(
        200, prep=p0_in_a_breakout, effect=lambda w: breakout_count() == 0
    ),
    ("POST", f"{R}/pause"): Rest(
        200, prep=lambda w: room_state(paused=False), effect=lambda w: room_is(paused=True)
    ),
    ("POST", f"{R}/resume"): Rest(
        200, prep=lambda w: room_state(paused=True), effect=lambda w: room_is(paused=False)
    ),
    ("POST", f"{R}/mute"): Rest(
        200,
        body=lambda w: {"audio": True, "video": True},
        effect=lambda w: room_is(audio_muted=True, video_muted=True),
    ),
    ("POST", f"{R}/unmute"): Rest(
        200,
        body=lambda w: {"audio": True, "video": True},
        prep=lambda w: room_state(audio_muted=True, video_muted=True),
        effect=lambda w: room_is(audio_muted=False, video_muted=False),
    ),
    ("GET", f"{R}/alerts"): Rest(200),
    ("PUT", f"{R}/alerts"): Rest(
        200,
        body=lambda w: {"unattended_after": 60, "contacts": ["desk@clinic.example"]},
        effect=lambda w: RoomAlerts.objects.filter(unattended_after=60).exists(),
    ),
    ("GET", "api/v1/webhooks"): Rest(200),
    ("POST", "api/v1/webhooks"): Rest(
        200,
        body=lambda w: {"url": "https://93.184.215.14/new", "events": ["knock.resolved"]},
        effect=lambda w: WebhookEndpoint.objects.filter(url__endswith="/new").exists(),
    ),
    ("GET", W): Rest(200, prep=_webhook),
    ("PATCH", W): Rest(
        200,
        prep=_webhook,
        body=lambda w: {"active": False},
        effect=lambda w: not WebhookEndpoint.objects.get(pk=w.extra["webhook"]).active,
    ),
    ("DELETE", W): Rest(
        200,
        prep=_webhook,
        effect=lambda w: not WebhookEndpoint.objects.filter(pk=w.extra["webhook"]).exists(),
    ),
    ("POST", f"{W}/rotate-secret"): Rest(
        200,
        prep=_webhook,
        effect=lambda w: (
            WebhookEndpoint.objects.get(pk=w.extra["webhook"]).secret != "whsec_matrix"
        ),
    ),
    ("GET", f"{W}/deliveries"): Rest(200, prep=_webhook),
    ("POST", f"{W}/deliveries/<str:delivery_id>/replay"): Rest(
        200,
        prep=_webhook,
        effect=lambda w: WebhookDelivery.objects.filter(replay_of=w.extra["delivery"]).exists(),
    ),
}

# Who calls the REST API, in the order they are tried on one world (the valid key last).
REST_CREDENTIALS = (
    "no key",
    "malformed (Basic)",
    "malformed (Bearer, no key)",
    "meeting token as key",
    "unknown key",
    "revoked key",
    "staff session cookie",
    "valid key",
)
# Public endpoints (no credential at all), and the pages the dashboard matrix covers.
PUBLIC = {
    ("GET", ""),  # the front page: what this server is (no room names)
    ("GET", "brand.css"),  # the deployment's accent colours (no room data)
    ("GET", "healthz"),
    ("GET", "readyz"),
    ("GET", "api/schema/"),
    ("GET", "r/<slug:room_name>/"),
    ("GET", "jsi18n/"),  # the page scripts' translations (the same for everyone)
}
PROTECTED_PAGES = {("GET", "metrics"), ("GET", "r/<slug:room_name>/dashboard/")}
# The language switcher: a POST with the CSRF token, no credential (tests/lobby/test_i18n.py).
SWITCHER = {("GET", "i18n/setlang/")}


def rest_world() -> World:
    w = build_world()
    token = make_token(room=ROOM, sub="olga", owner=True)
    w.extra["token"], w.extra["jti"] = token, tokens.verify_token(token).jti
    knock(w)
    _, w.extra["valid key"] = api_key_create(name="ops")
    revoked, w.extra["revoked key"] = api_key_create(name="old")
    revoked.revoked = True
    revoked.save(update_fields=["revoked"])
    user("ops", is_staff=True, is_superuser=True)
    return w


def rest_client(cred: str, w: World) -> HttpClient:
    header = {
        "malformed (Basic)": "Basic b3BzOmh1bnRlcjI=",
        "malformed (Bearer, no key)": "Bearer",
        "meeting token as key": f"Bearer {w.extra['token']}",
        "unknown key": "Bearer ak_000000000000.not-a-real-secret",
        "revoked key": f"Bearer {w.extra['revoked key']}",
        "valid key": f"Bearer {w.extra['valid key']}",
    }.get(cred)
    client = HttpClient(headers={"authorization": header} if header else {})
    if cred == "staff session cookie":
        client.force_login(get_user_model().objects.get(username="ops"))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "route"), list(REST_MATRIX), ids=[" ".join(k) for k in REST_MATRIX]
)
def test_rest_matrix(method, route):
    cell = REST_MATRIX[(method, route)]
    w = rest_world()
    got: dict[str, Any] = {}
    for cred in REST_CREDENTIALS:
        if cell.prep is not None:
            cell.prep(w)
        path = rest_path(route, cell, w)
        body = cell.body(w) if cell.body is not None else None
        before = snapshot()
        resp = rest_client(cred, w).generic(
            method,
            path,
            json.dumps(body) if body is not None else "",
            content_type="application/json",
        )
        if cred != "valid key":
            code = resp.json().get("error", {}).get("code")
            got[cred] = (resp.status_code, code, changes(before, snapshot()))
        else:
            done = cell.effect(w) if cell.effect is not None else True
            got[cred] = (resp.status_code, "done" if done else "no effect", [])
    expected: dict[str, Any] = {c: (401, "UNAUTHENTICATED", []) for c in REST_CREDENTIALS[:-1]}
    expected["valid key"] = (cell.status, "done", [])
    assert got == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "route"), sorted(PUBLIC), ids=[" ".join(k) for k in sorted(PUBLIC)]
)
def test_public_endpoints_need_no_credential(method, route):
    make_room(ROOM)
    path = "/" + route.replace("<slug:room_name>", ROOM)
    assert HttpClient().generic(method, path).status_code == 200


@pytest.mark.django_db
def test_metrics_matrix(settings):
    _, api_key = api_key_create(name="ops")
    cells = {
        # ANTEROOM_METRICS_TOKEN, Authorization header → status
        ("", None): 404,
        ("", "Bearer anything"): 404,
        ("s3cret-scrape-token", None): 401,
        ("s3cret-scrape-token", "Bearer wrong"): 401,
        ("s3cret-scrape-token", "Basic s3cret-scrape-token"): 401,
        ("s3cret-scrape-token", f"Bearer {api_key}"): 401,  # an API key is not the scrape token
        ("s3cret-scrape-token", "Bearer s3cret-scrape-token"): 200,
    }
    got = {}
    for setting, header in cells:
        settings.ANTEROOM_METRICS_TOKEN = setting
        client = HttpClient(headers={"authorization": header} if header else {})
        got[(setting, header)] = client.get("/metrics").status_code
    assert got == cells


# 3. Dashboard (form POSTs and the page) ----------------------------------------------------------


@dataclass(frozen=True)
class Form:
    data: Callable[[World], dict[str, str]]  # sets up the target, returns the POST body
    effect: Callable[[World], bool]


def _knocked(action: str, field: bool = True) -> Callable[[World], dict[str, str]]:
    """A fresh pending request; admit/deny name it, admit-all/deny-all sweep it up."""

    def data(w: World) -> dict[str, str]:
        request_id = knock(w)
        return {"action": action, "request_id": request_id} if field else {"action": action}

    return data


def _message_set(action: str) -> Callable[[World], dict[str, str]]:
    """A room message is showing; the action clears it."""

    def data(w: World) -> dict[str, str]:
        Room.objects.filter(name=ROOM).update(lobby_message="Was set")
        return {"action": action}

    return data


def _someone(action: str) -> Callable[[World], dict[str, str]]:
    """A fresh participant (``w.last``) for an action that ends their presence."""

    def data(w: World) -> dict[str, str]:
        w.last = someone(w)
        return {"action": action, "client": w.last}

    return data


def _flags(action: str, **before: bool) -> Callable[[World], dict[str, str]]:
    def data(w: World) -> dict[str, str]:
        room_state(**before)
        return {"action": action}

    return data


def _counted(action: str) -> Callable[[World], dict[str, str]]:
    def data(w: World) -> dict[str, str]:
        w.last = breakout_count()
        return {"action": action, "participants": "2", "max_rooms": "5"}

    return data


def _p0_away(action: str) -> Callable[[World], dict[str, str]]:
    def data(w: World) -> dict[str, str]:
        p0_in_a_breakout(w)
        return {"action": action}

    return data


def _p0_asked(action: str) -> Callable[[World], dict[str, str]]:
    def data(w: World) -> dict[str, str]:
        p0_asks_for_help(w)
        return {"action": action, "client": "p0"}

    return data


def ends_at(room_id: str) -> Any:
    return Room.objects.get(pk=room_id).ends_at


def _ends_at_of_b1(action: str) -> Callable[[World], dict[str, str]]:
    def data(w: World) -> dict[str, str]:
        w.last = ends_at(w.b1)
        return {"action": action, "room_id": w.b1, "minutes": "5"}

    return data


def _audit_by_anyone(action: str) -> Callable[[World], bool]:
    return lambda w: AuditEvent.objects.filter(action=action).exists()


DASHBOARD_FORMS: dict[str, Form] = {
    "admit": Form(_knocked("admit"), lambda w: status_of(w.last) == "admitted"),
    "deny": Form(_knocked("deny"), lambda w: status_of(w.last) == "denied"),
    "admit-all": Form(
        _knocked("admit-all", field=False), lambda w: status_of(w.last) == "admitted"
    ),
    "deny-all": Form(
        lambda w: {**_knocked("deny-all", field=False)(w), "confirm": "on"},
        lambda w: status_of(w.last) == "denied",
    ),
    "participant-remove": Form(_someone("participant-remove"), lambda w: not is_present(w.last)),
    "lobby-message": Form(
        lambda w: {"action": "lobby-message", "text": "Running late", "extend_minutes": "5"},
        lambda w: Room.objects.get(name=ROOM).lobby_message == "Running late",
    ),
    "lobby-message-clear": Form(
        _message_set("lobby-message-clear"),
        lambda w: Room.objects.get(name=ROOM).lobby_message == "",
    ),
    "entry-message": Form(
        lambda w: {"action": "entry-message", "request_id": knock(w), "text": "Forms"},
        lambda w: EntryRequest.objects.get(pk=w.last).host_message == "Forms",
    ),
    "participant-to-lobby": Form(_someone("participant-to-lobby"), lambda w: waiting_again(w.last)),
    "pause": Form(_flags("pause", paused=False), lambda w: room_is(paused=True)),
    "resume": Form(_flags("resume", paused=True), lambda w: room_is(paused=False)),
    "mute-audio": Form(
        _flags("mute-audio", audio_muted=False), lambda w: room_is(audio_muted=True)
    ),
    "unmute-audio": Form(
        _flags("unmute-audio", audio_muted=True), lambda w: room_is(audio_muted=False)
    ),
    "mute-video": Form(
        _flags("mute-video", video_muted=False), lambda w: room_is(video_muted=True)
    ),
    "unmute-video": Form(
        _flags("unmute-video", video_muted=True), lambda w: room_is(video_muted=False)
    ),
    "breakout-create": Form(_counted("breakout-create"), lambda w: breakout_count() > w.last),
    "breakout-create-and-invite": Form(
        _counted("breakout-create-and-invite"), lambda w: breakout_count() > w.last
    ),
    "breakout-invite": Form(
        lambda w: {"action": "breakout-invite", "room_id": w.b2, "client": "p0"},
        lambda w: invited("p0", w.b2),
    ),
    "breakout-move": Form(
        lambda w: {**_p0_away("breakout-move")(w), "client": "p0", "destination": w.b2},
        lambda w: breakout_of("p0") == w.b2,
    ),
    "breakout-extend": Form(_ends_at_of_b1("breakout-extend"), lambda w: ends_at(w.b1) > w.last),
    "breakout-broadcast": Form(
        lambda w: {"action": "breakout-broadcast", "text": "Five minutes left."},
        _audit_by_anyone("breakout-broadcast"),
    ),
    "breakout-help-answer": Form(_p0_asked("breakout-help-answer"), lambda w: help_answered()),
    "breakout-clear-all": Form(_p0_away("breakout-clear-all"), lambda w: breakout_of("p0") is None),
    "breakout-destroy-all": Form(_p0_away("breakout-destroy-all"), lambda w: breakout_count() == 0),
}

DASHBOARD_CALLERS = (
    "anonymous",
    "participant",  # a participant's token in the session
    "viewer",  # a viewer's token in the session
    "owner",  # opened the owner's ?t= link
    "moderator",  # opened a grant.canModerate ?t= link
    "staff",  # Django staff session
    "user",  # signed-in, not staff
    "other-room",  # another room's owner token in the session
    "revoked",  # a revoked owner token in the session
    "expired",  # an expired owner token in the session
)
A, X = "allowed", "refused"  # allowed: 302 back to the dashboard and done; refused: 403, unchanged
# Columns: DASHBOARD_CALLERS, in order.
#                anon participant viewer owner moderator staff user other revoked expired
MODERATORS_ONLY = (X, X, X, A, A, A, X, X, X, X)
DASHBOARD_MATRIX: dict[str, tuple[str, ...]] = {
    "GET": MODERATORS_ONLY,
    "admit": MODERATORS_ONLY,
    "deny": MODERATORS_ONLY,
    "admit-all": MODERATORS_ONLY,
    "deny-all": MODERATORS_ONLY,
    "participant-remove": MODERATORS_ONLY,
    "participant-to-lobby": MODERATORS_ONLY,
    "lobby-message": MODERATORS_ONLY,
    "lobby-message-clear": MODERATORS_ONLY,
    "entry-message": MODERATORS_ONLY,
    "pause": MODERATORS_ONLY,
    "resume": MODERATORS_ONLY,
    "mute-audio": MODERATORS_ONLY,
    "unmute-audio": MODERATORS_ONLY,
    "mute-video": MODERATORS_ONLY,
    "unmute-video": MODERATORS_ONLY,
    "breakout-create": MODERATORS_ONLY,
    "breakout-create-and-invite": MODERATORS_ONLY,
    "breakout-invite": MODERATORS_ONLY,
    "breakout-move": MODERATORS_ONLY,
    "breakout-extend": MODERATORS_ONLY,
    "breakout-broadcast": MODERATORS_ONLY,
    "breakout-help-answer": MODERATORS_ONLY,
    "breakout-clear-all": MODERATORS_ONLY,
    "breakout-destroy-all": MODERATORS_ONLY,
}
DASHBOARD = f"/r/{ROOM}/dashboard/"
SESSION_KEY = f"anteroom.moderator.{ROOM}"


def in_session(token: str, client: HttpClient | None = None) -> HttpClient:
    client = client or HttpClient()
    session = client.session
    session[SESSION_KEY] = token
    session.save()
    return client


def dashboard_client(caller: str, **kw: Any) -> HttpClient:
    def link(token: str) -> HttpClient:
        client = HttpClient(**kw)
        assert client.get(f"{DASHBOARD}?t={token}").status_code == 302
        return client

    match caller:
        case "anonymous":
            return HttpClient(**kw)
        case "participant":
            return in_session(make_token(room=ROOM, sub="pat"), HttpClient(**kw))
        case "viewer":
            return in_session(make_token(room=ROOM, sub="vic", viewer=True), HttpClient(**kw))
        case "owner":
            return link(make_token(room=ROOM, sub="olga", owner=True))
        case "moderator":
            return link(make_token(room=ROOM, sub="max", grant={"canModerate": True}))
        case "staff" | "user":
            client = HttpClient(**kw)
            client.force_login(user(caller, is_staff=caller == "staff"))
            return client
        case "other-room":
            token = make_token(room="elsewhere", sub="olga", owner=True)
            return in_session(token, HttpClient(**kw))
        case "revoked":
            return in_session(revoked_owner_token(), HttpClient(**kw))
        case "expired":
            return in_session(expired_owner_token(), HttpClient(**kw))
    raise AssertionError(caller)


def dashboard_cell(client: HttpClient, action: str, w: World) -> str:
    if action == "GET":
        resp = client.get(DASHBOARD)
        if resp.status_code == 200 and b'name="action"' in resp.content:
            return A
        return X if resp.status_code == 403 and b'name="action"' not in resp.content else "?"
    form = DASHBOARD_FORMS[action]
    data = form.data(w)
    before = snapshot()
    resp = client.post(DASHBOARD, data)
    if resp.status_code == 302 and resp["Location"] == DASHBOARD:
        return A if form.effect(w) else "302 without effect"
    diff = changes(before, snapshot())
    if resp.status_code == 403 and not diff:
        return X
    return f"{resp.status_code}, changed {diff}"


@pytest.mark.django_db
@pytest.mark.parametrize("caller", DASHBOARD_CALLERS)
def test_dashboard_matrix(caller):
    w = build_world()
    client = dashboard_client(caller)
    column = DASHBOARD_CALLERS.index(caller)
    got = {action: dashboard_cell(client, action, w) for action in DASHBOARD_MATRIX}
    assert got == {action: row[column] for action, row in DASHBOARD_MATRIX.items()}


# The ?t= link: only a moderator's token for this room is kept in the session.
LINK_MATRIX = {
    "participant": 403,
    "viewer": 403,
    "owner": 302,
    "moderator": 302,
    "other-room": 403,
    "revoked": 403,
    "expired": 403,
    "garbage": 403,
}


@pytest.mark.django_db
def test_dashboard_link_matrix():
    make_room(ROOM, privacy="private", enable_knocking=True)
    tokens_by_kind = {
        "participant": make_token(room=ROOM, sub="pat"),
        "viewer": make_token(room=ROOM, sub="vic", viewer=True),
        "owner": make_token(room=ROOM, sub="olga", owner=True),
        "moderator": make_token(room=ROOM, sub="max", grant={"canModerate": True}),
        "other-room": make_token(room="elsewhere", sub="olga", owner=True),
        "revoked": revoked_owner_token(),
        "expired": expired_owner_token(),
        "garbage": "not.a.token",
    }
    got = {}
    for kind, token in tokens_by_kind.items():
        client = HttpClient()
        status = client.get(f"{DASHBOARD}?t={token}").status_code
        kept = client.session.get(SESSION_KEY) == token
        assert kept == (status == 302), kind
        got[kind] = status
    assert got == LINK_MATRIX


@pytest.mark.django_db
@pytest.mark.parametrize("caller", ["staff", "owner"])
def test_dashboard_posts_without_the_csrf_token_are_refused(caller):
    """A moderator's browser lured into a cross-site form POST: 403, nothing changed. With the
    token from the page the same POST works (so the 403 is CSRF, not permissions)."""
    w = build_world()
    client = dashboard_client(caller, enforce_csrf_checks=True)
    got = {}
    for action, form in DASHBOARD_FORMS.items():
        data = form.data(w)
        before = snapshot()
        status = client.post(DASHBOARD, data).status_code
        got[action] = (status, changes(before, snapshot()))
    assert got == {action: (403, []) for action in DASHBOARD_FORMS}
    client.get(DASHBOARD)
    data = DASHBOARD_FORMS["pause"].data(w)
    data["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    assert client.post(DASHBOARD, data).status_code == 302
    assert DASHBOARD_FORMS["pause"].effect(w)


# 4. Django admin actions -----------------------------------------------------------------------


@dataclass(frozen=True)
class AdminAction:
    """Select the target rows (creating them), then check the action took effect."""

    select: Callable[[World], list[Any]]
    effect: Callable[[World], bool]


def _gone(model: Any) -> Callable[[World], bool]:
    return lambda w: not model.objects.filter(pk__in=w.last).exists()


def _rows(make: Callable[[World], Any]) -> Callable[[World], list[Any]]:
    def select(w: World) -> list[Any]:
        w.last = [make(w).pk]
        return list(w.last)

    return select


def _request(w: World) -> list[Any]:
    w.last = [knock(w)]
    return list(w.last)


def _token(w: World) -> Any:
    return MeetingToken.objects.get(jti=tokens.verify_token(make_token(room=ROOM)).jti)


def _invitation(w: World) -> BreakoutInvitation:
    invite(w, "p0", w.b2)
    return BreakoutInvitation.objects.get(participant_id="p0", status="pending")


def _access(model: Any, **extra: Any) -> Any:
    """A django-axes row (the staff sign-in throttle's records)."""
    fields = {"ip_address": "10.9.9.9", "user_agent": "matrix", "http_accept": "", "path_info": "/"}
    return model.objects.create(username=f"doomed-{uuid.uuid4().hex[:6]}", **fields, **extra)


def _admin_webhook(w: World) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        url="https://93.184.215.14/doomed", events=["*"], secret="x", created_at=clock.now()
    )


def _admin_delivery(w: World) -> WebhookDelivery:
    if "admin-hook" not in w.extra:
        w.extra["admin-hook"] = _admin_webhook(w)
        knock(w)
    d = WebhookDelivery.objects.filter(replay_of__isnull=True).first()
    assert d is not None
    return d


def _breakout_with_p0(w: World) -> list[Any]:
    p0_in_a_breakout(w)
    return [w.b1]


ADMIN_ACTIONS: dict[tuple[str, str], AdminAction] = {
    ("auth.user", "delete_selected"): AdminAction(
        _rows(lambda w: get_user_model().objects.get_or_create(username="doomed")[0]),
        _gone(get_user_model()),
    ),
    ("auth.group", "delete_selected"): AdminAction(
        _rows(lambda w: Group.objects.get_or_create(name="doomed")[0]), _gone(Group)
    ),
    ("lobby.room", "delete_selected"): AdminAction(
        _rows(lambda w: Room.objects.get(name="spare")), _gone(Room)
    ),
    ("lobby.entryrequest", "admitted_selected"): AdminAction(
        _request, lambda w: status_of(w.last[0]) == "admitted"
    ),
    ("lobby.entryrequest", "denied_selected"): AdminAction(
        _request, lambda w: status_of(w.last[0]) == "denied"
    ),
    ("lobby.meetingtoken", "revoke"): AdminAction(
        _rows(_token),
        lambda w: MeetingToken.objects.filter(pk__in=w.last, revoked_at__isnull=False).exists(),
    ),
    ("lobby.apikey", "delete_selected"): AdminAction(
        _rows(
            lambda w: (
                ApiKey.objects.filter(name="doomed").first() or api_key_create(name="doomed")[0]
            )
        ),
        _gone(ApiKey),
    ),
    # Deleting a sign-in lockout record unlocks that account/address (docs/security.md).
    ("axes.accessattempt", "delete_selected"): AdminAction(
        _rows(lambda w: _access(AccessAttempt, get_data="", post_data="", failures_since_start=9)),
        _gone(AccessAttempt),
    ),
    ("breakouts.breakoutroom", "return_members"): AdminAction(
        _breakout_with_p0, lambda w: breakout_of("p0") is None
    ),
    ("breakouts.breakoutroom", "clear_all"): AdminAction(
        _breakout_with_p0, lambda w: breakout_of("p0") is None and breakout_count() == 2
    ),
    ("breakouts.breakoutroom", "destroy_all"): AdminAction(
        _breakout_with_p0, lambda w: breakout_count() == 0
    ),
    ("lobby.webhookendpoint", "delete_selected"): AdminAction(
        _rows(lambda w: _admin_webhook(w)), _gone(WebhookEndpoint)
    ),
    ("lobby.webhookdelivery", "replay"): AdminAction(
        _rows(lambda w: _admin_delivery(w)),
        lambda w: WebhookDelivery.objects.filter(replay_of__isnull=False).exists(),
    ),
    ("lobby.roomalerts", "delete_selected"): AdminAction(
        _rows(
            lambda w: RoomAlerts.objects.get_or_create(
                room=Room.objects.get(name="spare"), defaults={"unattended_after": 30}
            )[0]
        ),
        lambda w: not RoomAlerts.objects.filter(room__name="spare").exists(),
    ),
}
# Not offered at all (rows whose deletion would bypass the services or undo a revocation):
# entry requests, participants, meeting tokens, audit events and breakout invitations.
ADMIN_CALLERS = ("anonymous", "user", "staff", "superuser")
# anonymous and non-staff: redirected to the admin login; staff without model permissions: 403.
ADMIN_EXPECTED = {"anonymous": "login", "user": "login", "staff": "403", "superuser": A}


def admin_client(caller: str) -> HttpClient:
    client = HttpClient()
    if caller != "anonymous":
        flags = {"is_staff": caller != "user", "is_superuser": caller == "superuser"}
        client.force_login(user(f"admin-{caller}", **flags))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "action"), list(ADMIN_ACTIONS), ids=[" ".join(k) for k in ADMIN_ACTIONS]
)
def test_admin_action_matrix(model, action):
    spec = ADMIN_ACTIONS[(model, action)]
    w = build_world()
    url = f"/admin/{model.replace('.', '/')}/"
    got = {}
    for caller in ADMIN_CALLERS:  # the superuser last: its action changes the world
        client = admin_client(caller)
        selected = spec.select(w)
        before = snapshot()
        resp = client.post(url, {"action": action, "_selected_action": selected, "post": "yes"})
        diff = changes(before, snapshot())
        if caller == "superuser":
            got[caller] = A if resp.status_code == 302 and spec.effect(w) else f"{resp.status_code}"
        elif resp.status_code == 302 and resp["Location"].startswith("/admin/login/") and not diff:
            got[caller] = "login"
        elif resp.status_code == 403 and not diff:
            got[caller] = "403"
        else:
            got[caller] = f"{resp.status_code}, changed {diff}"
    assert got == ADMIN_EXPECTED


# 5. Completeness: a new action without a row here fails -----------------------------------------


def live_message_types() -> set[str]:
    """The consumer's own table (``RoomConsumer._handler``'s ``own`` dict) + the registered
    ``extensions.ws_handlers``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(consumers.RoomConsumer._handler)))
    own = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "own" for t in node.targets)
    )
    assert isinstance(own, ast.Dict)
    names = {k.value for k in own.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return names | set(extensions.ws_handlers)


def test_every_message_type_is_in_the_matrix():
    live = live_message_types()
    assert live >= {"join", "admit", "breakout-create"}  # the introspection found the tables
    # Every on_* method is reachable through the table, and the table is what _handler serves.
    bare = object.__new__(consumers.RoomConsumer)
    methods = {m[3:].replace("_", "-") for m in dir(consumers.RoomConsumer) if m.startswith("on_")}
    assert methods <= live
    for kind in live:
        assert callable(consumers.RoomConsumer._handler(bare, kind))
    with pytest.raises(BadRequest):
        consumers.RoomConsumer._handler(bare, "not-a-type")
    assert set(WS_MATRIX) == live, "add the message type to WS_MATRIX with an outcome per caller"
    assert all(len(row) == len(WS_CALLERS) for row in WS_MATRIX.values())
    assert all(len(row) == len(JOIN_CREDENTIALS) for row in JOIN_MATRIX.values())


def live_routes() -> set[tuple[str, str]]:
    """Every (method, route) outside the admin, from the URL resolver."""
    out: set[tuple[str, str]] = set()

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if route.startswith("admin/"):
                continue
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                view = getattr(p.callback, "view_class", None)
                verbs = [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)]
                out.update((m.upper(), route) for m in verbs or ["get"])

    walk(get_resolver().url_patterns, "")
    return out


def test_every_endpoint_is_in_the_matrix():
    live = live_routes()
    assert ("GET", "api/v1/rooms") in live and ("POST", f"{R}/breakouts") in live
    covered = set(REST_MATRIX) | PUBLIC | PROTECTED_PAGES | SWITCHER
    assert live - covered == set(), "add the endpoint to REST_MATRIX (or PUBLIC, deliberately)"
    assert covered - live == set(), "the matrix names an endpoint that no longer exists"


def test_every_dashboard_action_is_in_the_matrix():
    choice = views.DashboardActionForm().fields["action"]
    assert isinstance(choice, forms.ChoiceField)
    form_actions = {str(v) for v, _ in choice.widget.choices}
    # the dashboard's own buttons and those of the panels registered into it (breakouts')
    templates = [ROOT / "templates" / "lobby" / "dashboard.html"] + [
        ROOT / "templates" / panel.template for panel in extensions.dashboard_panels
    ]
    assert len(templates) >= 2, "the breakout panel is not registered into the dashboard"
    buttons = {
        b for t in templates for b in re.findall(r'name="action" value="([^"]+)"', t.read_text())
    }
    assert buttons, "the dashboard template has no action buttons?"
    assert buttons <= form_actions, "a dashboard button the form would reject"
    assert form_actions == set(DASHBOARD_FORMS) == set(DASHBOARD_MATRIX) - {"GET"}
    assert all(len(row) == len(DASHBOARD_CALLERS) for row in DASHBOARD_MATRIX.values())


def test_every_admin_action_is_in_the_matrix():
    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(username="root", is_staff=True, is_superuser=True)
    live = {
        (f"{model._meta.app_label}.{model._meta.model_name}", name)
        for model, model_admin in admin.site._registry.items()
        for name in model_admin.get_actions(request)
    }
    assert ("lobby.meetingtoken", "revoke") in live
    assert set(ADMIN_ACTIONS) == live, "add the admin action to ADMIN_ACTIONS"


# 6. Revocation after the fact --------------------------------------------------------------------
# The dashboard forgets a moderator token revoked "since it was stored" (lobby/views.py,
# ``_moderator``), and a join with a revoked token is TOKEN_REVOKED (SPEC §2). The same must hold
# for the other ways a revoked token's holder is still in: its open socket, its resume key, and
# the admin's delete button on the revocation list.


async def _moderating_socket(clients: Any) -> tuple[World, Client, str]:
    """An owner on a socket whose token is then revoked: the world, the socket, its resume key."""
    w = await database_sync_to_async(build_world)()
    token = await database_sync_to_async(make_token)(room=ROOM, sub="olga", owner=True)
    sock: Client = await clients(ROOM)
    assert (await sock.request("join", rid="j", token=token))["ok"]
    resume = (await sock.expect("joined"))["resume"]
    claims = await database_sync_to_async(tokens.verify_token)(token)
    assert claims.jti is not None
    await database_sync_to_async(tokens.revoke_token)(jti=claims.jti)
    return w, sock, resume


@pytest.mark.django_db(transaction=True)
async def test_a_revoked_moderator_token_stops_moderating_on_its_open_socket(clients):
    w, sock, _ = await _moderating_socket(clients)
    request_id = await database_sync_to_async(knock)(w)
    ack = await sock.request("admit", rid=1, request_id=request_id)
    assert (ack["ok"], await database_sync_to_async(status_of)(request_id)) == (False, "pending")


@pytest.mark.django_db(transaction=True)
async def test_a_revoked_moderator_token_cannot_come_back_through_its_resume_key(clients):
    _, sock, resume = await _moderating_socket(clients)
    await sock.close()
    again: Client = await clients(ROOM)
    assert await ask(again, "join", 1, {"resume": resume}) == J_REV


@pytest.mark.django_db
def test_deleting_a_revoked_token_in_the_admin_does_not_bring_it_back():
    token = make_token(room=ROOM, sub="olga", owner=True)
    jti = tokens.verify_token(token).jti
    assert jti is not None
    tokens.revoke_token(jti=jti)
    root = admin_client("superuser")
    root.post(
        "/admin/lobby/meetingtoken/",
        {"action": "delete_selected", "_selected_action": [jti], "post": "yes"},
    )
    with pytest.raises(TokenRevoked):
        tokens.verify_token(token)


@pytest.mark.django_db(transaction=True)
async def test_a_staff_user_who_loses_staff_status_stops_moderating_on_the_open_socket(clients):
    from django.contrib.auth import get_user_model

    w = await database_sync_to_async(build_world)()
    cred = await database_sync_to_async(credential)("staff")
    sock: Client = await clients(ROOM, headers=cred.headers)
    assert (await sock.request("join", rid="j", staff=True))["ok"]
    await database_sync_to_async(
        lambda: get_user_model().objects.filter(username="ops").update(is_staff=False)
    )()
    request_id = await database_sync_to_async(knock)(w)
    ack = await sock.request("admit", rid=1, request_id=request_id)
    assert ack["ok"] is False and ack["error"]["code"] == "INVALID_PERMISSIONS"
    assert await database_sync_to_async(status_of)(request_id) == "pending"
