"""The breakout and room-control REST endpoints: same services, same errors, Daily's shapes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from breakouts.models import BreakoutInvitation
from lobby import events
from lobby.api.auth import api_key_create
from lobby.models import AuditEvent, Room
from tests.factories import mods

from .helpers import membership, party, to_person

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(db) -> Any:
    _, key = api_key_create(name="backend")
    client = Client(headers={"Authorization": f"Bearer {key}"})

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        fn = getattr(client, method)
        if method == "get":
            resp = fn(f"/api/v1{path}")
        else:  # no body at all when body is None, as ``curl -X POST`` sends
            data = "" if body is None else body
            resp = fn(f"/api/v1{path}", data, content_type="application/json")
        return resp.status_code, resp.json()

    return call


def test_list_is_empty_then_shows_rooms_with_members(api, sent):
    p = party(n=2)
    assert api("get", "/rooms/class/breakouts") == (200, {"total_count": 0, "data": []})
    status, body = api(
        "post", "/rooms/class/breakouts", {"participants": 2, "max_rooms": 1, "invite": True,
                                           "force_join": True}
    )  # fmt: skip
    assert status == 201
    [room] = body["rooms"]
    assert sorted(body["assignments"][room["id"]]) == ["p0", "p1"]
    status, listing = api("get", "/rooms/class/breakouts")
    assert status == 200 and listing["total_count"] == 1
    assert sorted(m["participant_id"] for m in listing["data"][0]["members"]) == ["p0", "p1"]
    assert set(listing["data"][0]) == {
        "id", "name", "number", "capacity", "audio", "video", "canvas", "share", "members",
        "ends_at",
    }  # fmt: skip
    # The guests heard it like any socket-made move; the decider is the API key.
    assert to_person(sent, p.room, "p0")[0]["type"] == "breakout-joined"
    invited = [f for f in sent.frames(mods(p.room)) if f["type"] == "breakout-invited"]
    assert invited[0]["by"] == "api:backend"
    assert AuditEvent.objects.filter(action="breakout-create-and-invite", actor="api:backend")


def test_create_invite_move_broadcast_clear_destroy(api, sent):
    p = party(n=3)
    status, body = api(
        "post", "/rooms/class/breakouts", {"participants": 2, "max_rooms": 2, "duration": 600}
    )
    assert status == 201 and [r["number"] for r in body["rooms"]] == [1, 2]
    a, b = (r["id"] for r in body["rooms"])
    status, body = api("post", "/rooms/class/breakouts/invite", {"room_id": a, "clients": ["p0"]})
    assert (status, body) == (200, {"room_id": a, "clients": ["p0"], "force_join": False})
    assert BreakoutInvitation.objects.get(participant_id="p0").status == "pending"
    status, body = api(
        "post", "/rooms/class/breakouts/move", {"participant_id": "p1", "room_id": b}
    )
    assert status == 200 and body["participant"]["breakout_id"] == b
    status, body = api("post", "/rooms/class/breakouts/extend", {"seconds": 120})
    assert status == 200 and len(body["rooms"]) == 2
    status, body = api("post", "/rooms/class/breakouts/broadcast", {"text": "5 minutes"})
    assert (status, body) == (200, {"rooms": 2})
    assert {"type": "breakout-message", "text": "5 minutes", "by": "api:backend"} in sent.frames(
        events.members_group(b)
    )
    status, body = api("post", "/rooms/class/breakouts/clear")
    assert (status, body) == (200, {"count": 1, "rooms": 2})
    assert membership(p.room)["p1"] is None
    api("post", "/rooms/class/breakouts/move", {"participant_id": "p1", "room_id": b})
    status, body = api("post", "/rooms/class/breakouts/destroy", {})
    assert status == 200 and body["count"] == 1 and body["rooms"] == 2
    assert body["room"]["paused"] is False
    assert not Room.objects.filter(parent__isnull=False).exists()


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/rooms/class/breakouts", {"participants": 1}, 400, "BREAKOUT_INVALID_SIZE"),
        ("/rooms/class/breakouts", {"participants": 2, "max_rooms": 11}, 409, "BREAKOUT_LIMIT"),
        ("/rooms/class/breakouts", {"participants": "2"}, 400, "BAD_REQUEST"),
        ("/rooms/class/breakouts", {"max_rooms": 1}, 400, "BAD_REQUEST"),
        ("/rooms/class/breakouts", {"participants": 2, "colour": "red"}, 400, "BAD_REQUEST"),
        ("/rooms/class/breakouts", {"participants": 2, "force_join": True}, 400, "BAD_REQUEST"),
        ("/rooms/class/breakouts", {"participants": 2, "invite": "yes"}, 400, "BAD_REQUEST"),
        ("/rooms/nope/breakouts", {"participants": 2}, 404, "ROOM_NOT_FOUND"),
        ("/rooms/class/breakouts/invite", {"room_id": "x", "clients": ["p0"]}, 404,
         "BREAKOUT_NOT_FOUND"),
        ("/rooms/class/breakouts/invite", {"clients": ["p0"]}, 400, "BAD_REQUEST"),
        ("/rooms/class/breakouts/move", {"participant_id": "p0"}, 400, "BAD_REQUEST"),
        ("/rooms/class/breakouts/move", {"participant_id": "p0", "room_id": None}, 409,
         "NOT_IN_BREAKOUT"),
        ("/rooms/class/breakouts/move", {"participant_id": "ghost", "room_id": None}, 404,
         "NOT_FOUND"),
        ("/rooms/class/breakouts/broadcast", {"text": ""}, 400, "BAD_REQUEST"),
        ("/rooms/class/breakouts/clear", {"now": True}, 400, "BAD_REQUEST"),
    ],
)  # fmt: skip
def test_errors_have_the_common_shape_and_change_nothing(api, sent, path, body, status, code):
    party(n=1)
    sent.items.clear()
    got_status, got = api("post", path, body)
    assert got_status == status and got["error"]["code"] == code, got
    assert set(got) == {"error"} and isinstance(got["error"]["message"], str)
    assert not Room.objects.filter(parent__isnull=False).exists()
    assert sent.items == []


def test_lecture_mode_over_rest_carries_the_legacy_code(api):
    party(n=1, mode="lecture")
    status, body = api("post", "/rooms/class/breakouts", {"participants": 2})
    assert status == 409
    assert body["error"]["code"] == "BREAKOUT_LECTURE_MODE"
    assert body["error"]["legacy_code"] == 5067


def test_endpoints_need_an_api_key(db):
    party(n=1)
    for path in ("/rooms/class/breakouts", "/rooms/class/breakouts/clear", "/rooms/class/pause"):
        resp = Client().post(f"/api/v1{path}", {}, content_type="application/json")
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "UNAUTHENTICATED"
    assert Client().get("/api/v1/rooms/class/breakouts").status_code == 401


def test_room_control_over_rest(api, sent):
    p = party(n=1)
    status, body = api("post", "/rooms/class/pause")
    assert status == 200 and body["room"]["paused"] is True
    status, body = api("post", "/rooms/class/mute", {"audio": True})
    assert body["room"]["audio_muted"] is True and body["room"]["video_muted"] is False
    status, body = api("post", "/rooms/class/mute", {"video": True})
    assert body["room"]["video_muted"] is True
    status, body = api("post", "/rooms/class/unmute", {"audio": True, "video": True})
    assert (body["room"]["audio_muted"], body["room"]["video_muted"]) == (False, False)
    status, body = api("post", "/rooms/class/resume")
    assert body["room"]["paused"] is False
    updates = [
        f for f in sent.frames(events.members_group(p.room.pk)) if f["type"] == "room-updated"
    ]
    assert len(updates) == 5
    status, body = api("post", "/rooms/class/mute", {})
    assert (status, body["error"]["code"]) == (400, "BAD_REQUEST")
    status, body = api("post", "/rooms/class/mute", {"audio": "yes"})
    assert (status, body["error"]["code"]) == (400, "BAD_REQUEST")
    status, body = api("post", "/rooms/nope/pause")
    assert (status, body["error"]["code"]) == (404, "ROOM_NOT_FOUND")


def test_the_schema_lists_the_breakout_endpoints(db):
    resp = Client().get("/api/schema/", headers={"Accept": "application/json"})
    text = resp.content.decode()
    for path in ("/breakouts", "/breakouts/invite", "/breakouts/move", "/breakouts/destroy",
                 "/{name}/pause"):  # fmt: skip
        assert path in text
