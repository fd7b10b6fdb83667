"""Strict REST bodies (``lobby.commands``): a wrong type, an unknown, missing or duplicate field,
or a body that is not an object is refused with the code the API gives (``BAD_REQUEST``, or
``INVALID_ENTRY_CLAIM`` for a token property and ``INVALID_TOKEN`` for a token), and nothing is
stored, changed or sent. The cases are derived from each body's schema, field by field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client as HttpClient

from lobby import commands, services
from lobby.api.auth import api_key_create
from lobby.models import AuditEvent, EntryRequest, MeetingToken, Participant, Room
from tests.factories import make_room, make_token
from tests.lobby.helpers import stored, with_value, wrong_values

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "zz-client-text-42"
MODELS = (Room, MeetingToken, EntryRequest, Participant, AuditEvent)


@dataclass(frozen=True)
class Body:
    path: str
    model: type[commands.Command]
    valid: dict[str, Any]
    method: str = "post"

    def code_for(self, field_path: tuple[str, ...]) -> str:
        if self.model is commands.MeetingTokenMintBody and len(field_path) > 1:
            return "INVALID_ENTRY_CLAIM"
        if self.model is commands.MeetingTokenDecodeBody:
            return "INVALID_TOKEN"
        return "BAD_REQUEST"


REQUEST = "00000000-0000-4000-8000-000000000001"  # replaced by the knock's id
BODIES = [
    Body(
        "/rooms",
        commands.RoomCreateBody,
        {"name": "fresh", "privacy": "private", "properties": {"enable_knocking": True}},
    ),
    Body(
        "/rooms/clinic",
        commands.RoomUpdateBody,
        {"privacy": "public", "properties": {"knock_ttl": 90, "mode": "lecture"}},
        method="patch",
    ),
    Body(
        "/meeting-tokens",
        commands.MeetingTokenMintBody,
        {
            "properties": {
                "room_name": "clinic",
                "user_id": "u1",
                "user_name": "Pat",
                "is_owner": False,
                "is_viewer": False,
                "exp": 4102444800,
                "grant": {"canPublish": True, "canModerate": False},
                "join_policy": {"mode": "ask", "ttl": 60},
            }
        },
    ),
    Body("/meeting-tokens/decode", commands.MeetingTokenDecodeBody, {"token": "<token>"}),
    Body("/meeting-tokens/revoke", commands.MeetingTokenRevokeBody, {"jti": "<jti>"}),
    Body(f"/rooms/clinic/entry-requests/{REQUEST}/admit", commands.EntryRequestDecisionBody, {}),
    Body(
        f"/rooms/clinic/entry-requests/{REQUEST}/deny",
        commands.EntryRequestDecisionBody,
        {"reason": "Later"},
    ),
    Body("/rooms/clinic/pause", commands.EmptyBody, {}),
    Body("/rooms/clinic/resume", commands.EmptyBody, {}),
    Body("/rooms/clinic/mute", commands.RoomMuteBody, {"audio": True, "video": True}),
    Body("/rooms/clinic/unmute", commands.RoomMuteBody, {"audio": True}),
]


@dataclass
class World:
    http: HttpClient
    token: str
    jti: str
    request_id: str

    def call(self, body: Body, data: Any, raw: str | None = None) -> Any:
        text = raw if raw is not None else json.dumps(data)
        text = text.replace("<token>", self.token).replace("<jti>", self.jti)
        path = "/api/v1" + body.path.replace(REQUEST, self.request_id)
        return getattr(self.http, body.method)(path, text, content_type="application/json")


@pytest.fixture
def world(db) -> World:
    room = make_room("clinic", privacy="private", enable_knocking=True)
    token = make_token("clinic", sub="dr", owner=True)
    plan = services.join_plan(room_name=room.name, token=None, name="Pat")
    conn = services.Connection(server_id="s", connection_id="c", browser_key="b")
    knock = services.entry_request_knock(plan=plan, conn=conn).request
    _, key = api_key_create(name="backend")
    jti = MeetingToken.objects.get(subject="dr").jti
    return World(HttpClient(headers={"authorization": f"Bearer {key}"}), token, jti, str(knock.id))


def refused(world: World, sent: Any, body: Body, code: str, data: Any = None, raw: str = ""):
    before = stored(*MODELS)
    sent.items.clear()
    resp = world.call(body, data, raw=raw or None)
    got = resp.json()
    assert resp.status_code in (400, 401) and got["error"]["code"] == code, (data, raw, got)
    assert set(got) == {"error"} and SECRET not in got["error"]["message"]
    assert stored(*MODELS) == before, "a refused call changed something"
    assert sent.items == [], "a refused call told someone"


def cases() -> list[tuple[Body, tuple[str, ...], Any]]:
    return [(b, path, v) for b in BODIES for path, v in wrong_values(b.model)]


def _id(case: Any) -> str:
    return str(case) if not isinstance(case, Body) else f"{case.method} {case.path[:40]}"


@pytest.mark.parametrize(("body", "field", "value"), cases(), ids=_id)
def test_a_wrong_type_is_refused_and_changes_nothing(world, sent, body, field, value):
    refused(world, sent, body, body.code_for(field), with_value(body.valid, field, value))


@pytest.mark.parametrize("body", BODIES, ids=_id)
def test_an_unknown_field_is_refused_and_not_named(world, sent, body):
    refused(world, sent, body, "BAD_REQUEST", {**body.valid, SECRET: 1})
    if body.model is commands.MeetingTokenMintBody:
        props = {**body.valid["properties"], SECRET: True}
        refused(world, sent, body, "BAD_REQUEST", {"properties": props})


@pytest.mark.parametrize("body", BODIES, ids=_id)
def test_a_duplicate_key_is_refused(world, sent, body):
    text = json.dumps(body.valid)
    dup = text[:-1] + (", " if body.valid else "") + f'"{SECRET}": 1, "{SECRET}": 2}}'
    refused(world, sent, body, "BAD_REQUEST", raw=dup)
    if body.valid:  # the same key twice, the second value a valid one too
        key = next(iter(body.valid))
        refused(
            world,
            sent,
            body,
            "BAD_REQUEST",
            raw=text[:-1] + f", {json.dumps(key)}: {json.dumps(body.valid[key])}}}",
        )


@pytest.mark.parametrize("body", BODIES, ids=_id)
def test_a_body_that_is_not_an_object_is_refused(world, sent, body):
    for data in ([], [body.valid], "x", 5, None, True):
        refused(world, sent, body, "BAD_REQUEST", data)


@pytest.mark.parametrize(
    "body", [b for b in BODIES if b.model.model_json_schema().get("required")], ids=_id
)
def test_a_missing_field_is_refused(world, sent, body):
    for field in body.model.model_json_schema()["required"]:
        data = {k: v for k, v in body.valid.items() if k != field}
        refused(world, sent, body, body.code_for((field,)), data)


@pytest.mark.parametrize("body", BODIES, ids=_id)
def test_the_valid_body_is_accepted(world, body):
    resp = world.call(body, body.valid)
    assert resp.status_code == 200, resp.content


def test_the_revoke_body_with_a_repeated_jti_revokes_nothing(world, sent):
    # With the last key winning, this would revoke the second token.
    other = MeetingToken.objects.get(jti=world.jti)
    raw = json.dumps({"jti": "someone-else"})[:-1] + f', "jti": "{other.jti}"}}'
    refused(world, sent, BODIES[4], "BAD_REQUEST", raw=raw)
    assert MeetingToken.objects.get(jti=world.jti).revoked_at is None
