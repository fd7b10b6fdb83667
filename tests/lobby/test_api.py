"""The REST API (SPEC §4) as a backend uses it: API keys, rooms, tokens, entry requests."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client as HttpClient

from lobby import events, services, tokens
from lobby.api.auth import api_key_create
from lobby.models import ApiKey, EntryRequest, MeetingToken, Participant, Room
from tests.factories import make_room, make_token
from tests.lobby.helpers import adb, aroom, atoken, closed_with

pytestmark = pytest.mark.django_db(transaction=True)

V1 = "/api/v1"


class Api:
    """A backend's HTTP client with its API key."""

    def __init__(self, key: str | None) -> None:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self.http = HttpClient(headers=headers)

    def get(self, path: str) -> Any:
        return self.http.get(V1 + path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.http.post(V1 + path, json.dumps(body or {}), content_type="application/json")

    def patch(self, path: str, body: Any) -> Any:
        return self.http.patch(V1 + path, json.dumps(body), content_type="application/json")

    def delete(self, path: str) -> Any:
        return self.http.delete(V1 + path)


@pytest.fixture
def api(db) -> Api:
    _, key = api_key_create(name="backend")
    return Api(key)


def error_of(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.content)
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


# API keys ------------------------------------------------------------------------------------


def test_create_api_key_prints_a_working_key_alone_on_its_last_line():
    out = io.StringIO()
    call_command("create_api_key", "billing-backend", stdout=out)
    key = out.getvalue().rstrip("\n").splitlines()[-1]
    assert key == key.strip() and " " not in key
    resp = Api(key).get("/rooms")
    assert resp.status_code == 200 and resp.json() == {"total_count": 0, "data": []}
    # Only a hash is stored.
    row = ApiKey.objects.get(name="billing-backend")
    assert key not in (row.key_hash, row.prefix) and row.key_hash == services.hash_secret(key)
    with pytest.raises(CommandError):
        call_command("create_api_key", "billing-backend", stdout=io.StringIO())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer ak_000000000000.wrong"},
        {"authorization": "Bearer not-a-key"},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"authorization": "Bearer"},
    ],
    ids=["none", "unknown", "garbage", "basic", "empty"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/rooms"),
        ("post", "/rooms"),
        ("get", "/rooms/clinic"),
        ("delete", "/rooms/clinic"),
        ("post", "/meeting-tokens"),
        ("post", "/meeting-tokens/decode"),
        ("post", "/meeting-tokens/revoke"),
        ("get", "/rooms/clinic/entry-requests"),
        ("get", "/rooms/clinic/participants"),
    ],
)
def test_no_or_bad_key_is_401_and_changes_nothing(headers, method, path):
    make_room("clinic")
    http = HttpClient(headers=headers)
    if method == "post":
        resp = http.post(V1 + path, "{}", content_type="application/json")
    else:
        resp = getattr(http, method)(V1 + path)
    error_of(resp, 401, "UNAUTHENTICATED")
    assert list(Room.objects.values_list("name", flat=True)) == ["clinic"]
    assert MeetingToken.objects.count() == 0


def test_a_revoked_key_stops_working(api):
    _, key = api_key_create(name="old")
    assert Api(key).get("/rooms").status_code == 200
    ApiKey.objects.filter(name="old").update(revoked=True)
    error_of(Api(key).get("/rooms"), 401, "UNAUTHENTICATED")


# Rooms ---------------------------------------------------------------------------------------


def test_rooms_crud_in_dailys_shape(api, sent):
    resp = api.post(
        "/rooms",
        {
            "name": "clinic",
            "privacy": "private",
            "properties": {
                "enable_knocking": True,
                "mode": "group",
                "max_active_talkers": 6,
                "knock_ttl": 30,
            },
        },
    )
    assert resp.status_code == 200  # Daily answers a created room with 200 and the room
    room = resp.json()
    assert {k: room[k] for k in ("name", "privacy", "mode", "paused")} == {
        "name": "clinic",
        "privacy": "private",
        "mode": "group",
        "paused": False,
    }
    assert (room["enable_knocking"], room["max_active_talkers"], room["knock_ttl"]) == (True, 6, 30)
    r = Room.objects.get(name="clinic")
    assert (r.privacy, r.enable_knocking, r.knock_ttl, r.max_active_talkers) == (
        "private",
        True,
        30,
        6,
    )

    unnamed = api.post("/rooms", {}).json()
    assert unnamed["privacy"] == "public" and 1 <= len(unnamed["name"]) <= 64
    listing = api.get("/rooms").json()
    assert listing["total_count"] == 2
    assert {x["name"] for x in listing["data"]} == {"clinic", unnamed["name"]}
    assert api.get("/rooms/clinic").json() == room

    resp = api.patch("/rooms/clinic", {"privacy": "public", "properties": {"knock_ttl": 120}})
    assert resp.status_code == 200
    assert (resp.json()["privacy"], resp.json()["knock_ttl"]) == ("public", 120)
    r.refresh_from_db()
    assert (r.privacy, r.knock_ttl, r.enable_knocking) == ("public", 120, True)
    assert [f["type"] for f in sent.frames(events.members_group(r.pk))] == ["room-updated"]

    resp = api.delete("/rooms/clinic")
    assert (resp.status_code, resp.json()) == (200, {"deleted": True, "name": "clinic"})
    error_of(api.get("/rooms/clinic"), 404, "ROOM_NOT_FOUND")
    assert not Room.objects.filter(name="clinic").exists()
    error_of(api.delete("/rooms/clinic"), 404, "ROOM_NOT_FOUND")


def test_privacy_is_also_accepted_among_the_properties(api):
    # Daily's place for privacy is the top level; inside properties it has always worked too.
    room = api.post("/rooms", {"name": "inner", "properties": {"privacy": "private"}}).json()
    assert room["privacy"] == "private"
    both = {"name": "both", "privacy": "public", "properties": {"privacy": "private"}}
    assert api.post("/rooms", both).json()["privacy"] == "public"  # the top level wins
    changed = api.patch("/rooms/inner", {"properties": {"privacy": "public"}}).json()
    assert changed["privacy"] == "public" and Room.objects.get(name="inner").privacy == "public"


BAD_ROOMS: list[tuple[str, Any]] = [
    ("name-with-space", {"name": "bad name"}),
    ("name-too-long", {"name": "x" * 65}),
    ("name-empty", {"name": ""}),
    ("name-number", {"name": 5}),
    ("name-slash", {"name": "a/b"}),
    ("privacy-unknown", {"name": "r", "privacy": "secret"}),
    ("privacy-property-unknown", {"name": "r", "properties": {"privacy": "secret"}}),
    ("privacy-null", {"name": "r", "privacy": None}),
    ("properties-not-object", {"name": "r", "properties": []}),
    ("unknown-property", {"name": "r", "properties": {"colour": "red"}}),
    ("unknown-field", {"name": "r", "owner": "me"}),
    ("talkers-too-few", {"name": "r", "properties": {"max_active_talkers": 2}}),
    ("talkers-too-many", {"name": "r", "properties": {"max_active_talkers": 51}}),
    ("talkers-string", {"name": "r", "properties": {"max_active_talkers": "12"}}),
    ("talkers-bool", {"name": "r", "properties": {"max_active_talkers": True}}),
    ("ttl-too-short", {"name": "r", "properties": {"knock_ttl": 9}}),
    ("ttl-too-long", {"name": "r", "properties": {"knock_ttl": 601}}),
    ("ttl-float", {"name": "r", "properties": {"knock_ttl": 30.5}}),
    ("knocking-string", {"name": "r", "properties": {"enable_knocking": "yes"}}),
    ("mode-unknown", {"name": "r", "properties": {"mode": "webinar"}}),
    ("body-array", [{"name": "r"}]),
    ("body-string", "r"),
]


@pytest.mark.parametrize("body", [b[1] for b in BAD_ROOMS], ids=[b[0] for b in BAD_ROOMS])
def test_bad_room_input_is_400_and_creates_nothing(api, body):
    error_of(api.post("/rooms", body), 400, "BAD_REQUEST")
    assert Room.objects.count() == 0


def test_room_body_that_is_not_json_is_400(api):
    resp = api.http.post(V1 + "/rooms", "{not json", content_type="application/json")
    error_of(resp, 400, "BAD_REQUEST")
    resp = api.http.post(V1 + "/rooms", {"name": "r"})  # a form, not JSON
    assert resp.status_code == 415 and resp.json()["error"]["code"]
    assert Room.objects.count() == 0


def test_duplicate_room_name_is_409(api):
    assert api.post("/rooms", {"name": "clinic"}).status_code == 200
    error_of(api.post("/rooms", {"name": "clinic"}), 409, "ROOM_EXISTS")
    assert Room.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"properties": {"knock_ttl": 5}},
        {"privacy": "hidden"},
        {"properties": {"enable_knocking": 1}},
        {"name": "renamed"},
    ],
)
def test_bad_room_change_is_400_and_changes_nothing(api, sent, body):
    make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=60)
    error_of(api.patch("/rooms/clinic", body), 400, "BAD_REQUEST")
    r = Room.objects.get(name="clinic")
    assert (r.privacy, r.enable_knocking, r.knock_ttl) == ("private", True, 60)
    assert sent.items == []


# Meeting tokens ------------------------------------------------------------------------------


def test_mint_decode_revoke(api):
    make_room("clinic")
    resp = api.post(
        "/meeting-tokens",
        {
            "properties": {
                "room_name": "clinic",
                "is_owner": True,
                "user_name": "Dr Who",
                "user_id": "dr-who",
            }
        },
    )
    assert resp.status_code == 200
    token = resp.json()["token"]
    claims = tokens.verify_token(token, room_name="clinic")
    assert (claims.owner, claims.name, claims.sub, claims.room) == (
        True,
        "Dr Who",
        "dr-who",
        "clinic",
    )
    assert MeetingToken.objects.get(jti=claims.jti).issued_by == "api:backend"

    decoded = api.post("/meeting-tokens/decode", {"token": token})
    assert decoded.status_code == 200
    body = decoded.json()
    assert {k: body[k] for k in ("room", "sub", "name", "owner", "viewer", "aud", "jti")} == {
        "room": "clinic",
        "sub": "dr-who",
        "name": "Dr Who",
        "owner": True,
        "viewer": False,
        "aud": "anteroom",
        "jti": claims.jti,
    }
    assert body["grant"]["canModerate"] is False and body["joinPolicy"] == {"mode": "direct"}

    resp = api.post("/meeting-tokens/revoke", {"jti": claims.jti})
    assert resp.json() == {"jti": claims.jti, "revoked": True, "effective": True}
    assert api.post("/meeting-tokens/revoke", {"jti": claims.jti}).json()["effective"] is False
    err = api.post("/meeting-tokens/decode", {"token": token})
    error_of(err, 401, "TOKEN_REVOKED")


def test_mint_an_ask_token_for_a_panelist(api):
    make_room("webinar")
    resp = api.post(
        "/meeting-tokens",
        {"properties": {"room_name": "webinar", "join_policy": {"mode": "ask", "ttl": 300}}},
    )
    claims = tokens.verify_token(resp.json()["token"])
    assert (claims.join_mode, claims.ttl) == ("ask", 300)


@pytest.mark.parametrize(
    "props",
    [
        {"is_owner": True, "join_policy": {"mode": "ask"}},
        {"grant": {"canModerate": True}, "join_policy": {"mode": "ask"}},
        {"join_policy": {"mode": "direct", "ttl": 30}},
        {"join_policy": {"mode": "ask", "ttl": 5}},
        {"join_policy": {"mode": "ask", "ttl": 601}},
        {"join_policy": "ask"},
        {"is_owner": "true"},
        {"grant": {"canModerate": "false"}},
        {"exp": 1},
        {"exp": 10**20},
        {"user_name": 7},
    ],
)
def test_mint_with_bad_claims_is_400_invalid_entry_claim(api, props):
    make_room("clinic")
    resp = api.post("/meeting-tokens", {"properties": {"room_name": "clinic", **props}})
    error_of(resp, 400, "INVALID_ENTRY_CLAIM")
    assert MeetingToken.objects.count() == 0


def test_mint_refuses_unknown_properties_and_rooms(api):
    make_room("clinic")
    error_of(
        api.post("/meeting-tokens", {"properties": {"room_name": "clinic", "is_admin": True}}),
        400,
        "BAD_REQUEST",
    )
    error_of(
        api.post("/meeting-tokens", {"properties": {"room_name": "nowhere"}}),
        404,
        "ROOM_NOT_FOUND",
    )
    assert MeetingToken.objects.count() == 0


@pytest.mark.parametrize("body", [{}, {"token": 5}, {"token": "a.b.c"}])
def test_decode_a_bad_token(api, body):
    error_of(api.post("/meeting-tokens/decode", body), 401, "INVALID_TOKEN")


@pytest.mark.parametrize("body", [{}, {"jti": 5}, {"jti": ""}, {"jti": "x" * 65}])
def test_revoke_needs_a_jti(api, body):
    error_of(api.post("/meeting-tokens/revoke", body), 400, "BAD_REQUEST")
    assert MeetingToken.objects.count() == 0


# Entry requests ------------------------------------------------------------------------------


def _knock(room: Room, name: str, browser: str) -> EntryRequest:
    plan = services.join_plan(room_name=room.name, token=None, name=name)
    conn = services.Connection(server_id="s", connection_id=browser, browser_key=browser)
    return services.entry_request_knock(plan=plan, conn=conn).request


def test_entry_requests_list_and_filter(api):
    room = make_room("clinic", privacy="private", enable_knocking=True)
    a = _knock(room, "A", "a")
    b = _knock(room, "B", "b")
    _knock(make_room("other", privacy="private", enable_knocking=True), "C", "c")
    listing = api.get("/rooms/clinic/entry-requests").json()
    assert listing["total_count"] == 2
    assert [(x["id"], x["name"], x["status"]) for x in listing["data"]] == [
        (str(a.id), "A", "pending"),
        (str(b.id), "B", "pending"),
    ]
    assert api.post(f"/rooms/clinic/entry-requests/{a.id}/admit").status_code == 200
    assert [x["name"] for x in api.get("/rooms/clinic/entry-requests").json()["data"]] == ["B"]
    admitted = api.get("/rooms/clinic/entry-requests?status=admitted").json()["data"]
    assert [(x["name"], x["resolved_by"]) for x in admitted] == [("A", "api:backend")]
    assert api.get("/rooms/clinic/entry-requests?status=denied").json()["total_count"] == 0
    error_of(api.get("/rooms/clinic/entry-requests?status=everything"), 400, "BAD_REQUEST")
    error_of(api.get("/rooms/nowhere/entry-requests"), 404, "ROOM_NOT_FOUND")


def test_rest_admit_sends_the_same_events_as_the_socket(api, sent):
    room = make_room("clinic", privacy="private", enable_knocking=True)
    r = _knock(room, "Pat", "p")
    sent.items.clear()
    resp = api.post(f"/rooms/clinic/entry-requests/{r.id}/admit")
    assert resp.json() == {"request_id": str(r.id), "outcome": "admitted", "effective": True}
    assert sent.frames(events.mods_group(room.pk)) == [
        {
            "type": "entry-resolved",
            "request_id": str(r.id),
            "outcome": "admitted",
            "by": "api:backend",
        }
    ]
    [to_guest] = sent.to(events.request_group(r.id))
    assert to_guest["action"] == "admitted" and to_guest["frames"][0]["type"] == "joined"
    assert [f["type"] for f in sent.frames(events.members_group(room.pk))] == ["participant-joined"]
    # The first decision won: later REST calls are no-ops reporting the status, and silent.
    sent.items.clear()
    for verb in ("admit", "deny"):
        resp = api.post(f"/rooms/clinic/entry-requests/{r.id}/{verb}")
        assert resp.status_code == 200
        assert resp.json() == {"request_id": str(r.id), "outcome": "admitted", "effective": False}
    assert sent.items == []


def test_rest_deny_with_a_reason(api, sent):
    room = make_room("clinic", privacy="private", enable_knocking=True)
    r = _knock(room, "Pat", "p")
    sent.items.clear()
    resp = api.post(f"/rooms/clinic/entry-requests/{r.id}/deny", {"reason": "Come back at 3"})
    assert resp.json() == {"request_id": str(r.id), "outcome": "denied", "effective": True}
    [to_guest] = sent.to(events.request_group(r.id))
    assert to_guest["frames"] == [
        {"type": "error", "error": {"code": "ENTRY_DENIED", "message": "Come back at 3"}}
    ]
    assert to_guest["close_code"] == 4403
    assert not Participant.objects.exists()


def test_rest_decision_on_an_unknown_request_is_404(api):
    room = make_room("clinic", privacy="private", enable_knocking=True)
    other = make_room("other", privacy="private", enable_knocking=True)
    r = _knock(other, "Pat", "p")
    for rid in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", str(r.id)):
        error_of(api.post(f"/rooms/clinic/entry-requests/{rid}/admit"), 404, "REQUEST_NOT_FOUND")
    assert EntryRequest.objects.get().status == "pending"
    assert room.pk != other.pk


async def test_a_socket_guest_admitted_over_rest(clients):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    _, key = await adb(api_key_create)(name="backend")
    host = await clients()
    await host.request("join", token=await atoken(sub="host", name="Host", owner=True))
    guest = await clients(client=("10.0.0.9", 4000))
    await guest.send(type="join", name="Pat")
    waiting = await guest.expect("waiting")
    request_id = waiting["request"]["id"]
    await host.expect("entry-requested")

    resp = await adb(lambda: Api(key).post(f"/rooms/clinic/entry-requests/{request_id}/admit"))()
    assert resp.json()["effective"] is True
    joined = await guest.expect("joined")
    assert joined["participant"]["name"] == "Pat"
    assert {p["name"] for p in joined["participants"]} == {"Host", "Pat"}
    resolved = await host.expect("entry-resolved")
    assert resolved == {
        "type": "entry-resolved",
        "request_id": request_id,
        "outcome": "admitted",
        "by": "api:backend",
    }
    assert (await host.expect("participant-joined"))["participant"]["name"] == "Pat"
    # The moderator's later click is a no-op.
    ack = await host.request("admit", rid="late", request_id=request_id)
    assert ack["data"] == {"request_id": request_id, "outcome": "admitted", "effective": False}


# Participants, schema, health ----------------------------------------------------------------


def test_participants_list_shows_who_is_present(api):
    room = make_room("clinic")
    people: list[tuple[str, dict[str, Any]]] = [
        ("dr", {"owner": True}),
        ("m", {}),
        ("v", {"viewer": True}),
    ]
    for sub, extra in people:
        token = make_token("clinic", sub=sub, name=sub, **extra)
        plan = services.join_plan(room_name="clinic", token=token)
        services.participant_join(
            plan=plan, conn=services.Connection(server_id="s", connection_id=sub)
        )
    services.participant_leave(room=room, participant_id="m")
    listing = api.get("/rooms/clinic/participants").json()
    assert listing["total_count"] == 2
    assert [(p["participant_id"], p["role"], p["status"]) for p in listing["data"]] == [
        ("dr", "moderator", "active"),
        ("v", "viewer", "active"),
    ]
    error_of(api.get("/rooms/nowhere/participants"), 404, "ROOM_NOT_FOUND")


def test_openapi_schema_is_served_without_a_key():
    resp = HttpClient().get("/api/schema/?format=json")
    assert resp.status_code == 200
    schema = json.loads(resp.content)
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    for p in (
        "/api/v1/rooms",
        "/api/v1/rooms/{name}",
        "/api/v1/meeting-tokens",
        "/api/v1/meeting-tokens/decode",
        "/api/v1/meeting-tokens/revoke",
        "/api/v1/rooms/{name}/entry-requests",
        "/api/v1/rooms/{name}/entry-requests/{request_id}/admit",
        "/api/v1/rooms/{name}/entry-requests/{request_id}/deny",
        "/api/v1/rooms/{name}/participants",
    ):
        assert p in paths, p


def test_healthz_and_readyz():
    live = HttpClient().get("/healthz")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    ready = HttpClient().get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok" and body["checks"]["channel_layer"] == "ok"


def test_readyz_says_which_part_is_down(monkeypatch):
    from django.db.backends.base.base import BaseDatabaseWrapper

    def broken(self, *a, **kw):
        raise RuntimeError("database is down")

    monkeypatch.setattr(BaseDatabaseWrapper, "cursor", broken)
    resp = HttpClient().get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"]["database"] != "ok"
    assert resp.json()["checks"]["channel_layer"] == "ok"


async def test_deleting_a_room_disconnects_its_members_and_waiting_guests(clients):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    _, key = await adb(api_key_create)(name="backend")
    host = await clients()
    await host.request("join", token=await atoken(sub="host", owner=True))
    await host.expect("joined")
    guest = await clients(client=("10.0.0.9", 4000))
    await guest.send(type="join", name="Pat")
    await guest.expect("waiting")
    resp = await adb(lambda: Api(key).delete("/rooms/clinic"))()
    assert (resp.status_code, resp.json()) == (200, {"deleted": True, "name": "clinic"})
    for c in (host, guest):
        assert (await c.expect("error"))["error"]["code"] == "ROOM_NOT_FOUND"
        assert await closed_with(c) == 4404
    assert await adb(EntryRequest.objects.count)() == 0
