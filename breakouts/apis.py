"""REST for breakouts and parent-room control (SPEC §4): thin views over the services.

Authentication, the error shape and the list shape are the lobby API's (``lobby.apis``). The
actor is the API key (``api:<key name>``), a moderator.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from lobby import events as lobby_events
from lobby import services as lobby_services
from lobby.apis import BaseApi, _body, _listing
from lobby.errors import BadRequest

from . import services
from .selectors import breakout_room_with_members, breakout_rooms_payload

CREATE_FIELDS = {
    "participants",
    "audio",
    "video",
    "canvas",
    "share",
    "max_rooms",
    "duration",
    "invite",
    "force_join",
}
FLAGS = {"audio": True, "video": True, "canvas": False, "share": False}


def _only(body: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"Unknown fields: {', '.join(sorted(unknown))}.")
    return body


def _required(body: dict[str, Any], key: str) -> Any:
    if key not in body:
        raise BadRequest(f"{key} is required.")
    return body[key]


def _optional_body(request: Request) -> dict[str, Any]:
    """Action endpoints also accept no body at all (with or without a Content-Type)."""
    if request.META.get("CONTENT_LENGTH") in (None, "", "0"):
        return {}
    return _body(request) if request.data else {}


class BreakoutListApi(BaseApi):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Breakout rooms with members")
    def get(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        return _listing(breakout_rooms_payload(parent=room))

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        summary="Create breakout rooms (with invite: true, create and invite)",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        body = _only(_body(request), CREATE_FIELDS)
        invite = body.get("invite", False)
        if type(invite) is not bool:
            raise BadRequest("invite must be a boolean.")
        fields: dict[str, Any] = {
            "participants": _required(body, "participants"),
            "max_rooms": body.get("max_rooms", 1),
            "duration": body.get("duration"),
            **{flag: body.get(flag, default) for flag, default in FLAGS.items()},
        }
        actor = self.actor(request)
        if invite:
            rooms, assignments = services.breakout_rooms_create_and_invite(
                parent=room, actor=actor, force_join=body.get("force_join", False), **fields
            )
            ids = {str(r.pk) for r in rooms}
            payload = [r for r in breakout_rooms_payload(parent=room) if r["id"] in ids]
            return Response({"rooms": payload, "assignments": assignments}, status=201)
        if "force_join" in body:
            raise BadRequest("force_join needs invite: true.")
        rooms = services.breakout_rooms_create(parent=room, actor=actor, **fields)
        return Response({"rooms": [breakout_room_with_members(room=r) for r in rooms]}, status=201)


class BreakoutInviteApi(BaseApi):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        summary="Invite (or with force_join move) participants into a breakout room",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        body = _only(_body(request), {"room_id", "clients", "force_join"})
        invited = services.breakout_invite(
            parent=room,
            actor=self.actor(request),
            room_id=_required(body, "room_id"),
            clients=_required(body, "clients"),
            force_join=body.get("force_join", False),
        )
        return Response(
            {
                "room_id": str(invited.room.pk),
                "clients": invited.clients,
                "force_join": invited.force_join,
            }
        )


class BreakoutMoveApi(BaseApi):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        summary="Move a participant into a breakout room, or back (room_id null)",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        body = _only(_body(request), {"participant_id", "room_id"})
        p = services.breakout_move(
            parent=room,
            actor=self.actor(request),
            participant_id=_required(body, "participant_id"),
            room_id=_required(body, "room_id"),
        )
        return Response({"participant": lobby_events.participant_payload(p)})


class BreakoutBroadcastApi(BaseApi):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        summary="Send a message to every breakout room",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        body = _only(_body(request), {"text"})
        n = services.breakout_broadcast(
            parent=room, actor=self.actor(request), text=_required(body, "text")
        )
        return Response({"rooms": n})


class BreakoutExtendApi(BaseApi):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        summary="Extend the timer of one breakout room (room_id) or of all",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        body = _only(_body(request), {"room_id", "seconds"})
        rooms = services.breakout_extend(
            parent=room,
            actor=self.actor(request),
            room_id=body.get("room_id"),
            seconds=_required(body, "seconds"),
        )
        return Response({"rooms": [breakout_room_with_members(room=r) for r in rooms]})


class BreakoutClearApi(BaseApi):
    @extend_schema(
        request=None,
        responses={200: OpenApiTypes.OBJECT},
        summary="Return everyone to the parent room (rooms are kept)",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        _only(_optional_body(request), set())
        done = services.breakout_rooms_clear_all(parent=room, actor=self.actor(request))
        return Response({"count": len(done.returned), "rooms": done.rooms})


class BreakoutDestroyApi(BaseApi):
    @extend_schema(
        request=None,
        responses={200: OpenApiTypes.OBJECT},
        summary="Return everyone, delete the breakout rooms, resume and unmute the parent",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        _only(_optional_body(request), set())
        done = services.breakout_rooms_destroy_all(parent=room, actor=self.actor(request))
        return Response(
            {
                "count": len(done.returned),
                "rooms": done.rooms,
                "room": lobby_events.room_payload(done.parent),
            }
        )


# Parent-room control -------------------------------------------------------------------------


class RoomControlApi(BaseApi):
    """``POST /rooms/{name}/pause|resume|mute|unmute`` → ``{room}`` (as the socket's ack)."""

    action = "pause"

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        summary="Pause/resume or mute/unmute a room (mute: {audio, video} booleans)",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        changes: dict[str, bool]
        if self.action in ("pause", "resume"):
            _only(_optional_body(request), set())
            changes = {"paused": self.action == "pause"}
        else:
            body = _only(_optional_body(request), {"audio", "video"})
            changes = {}
            for key in ("audio", "video"):
                value = body.get(key, False)
                if type(value) is not bool:
                    raise BadRequest(f"{key} must be a boolean.")
                if value:
                    changes[f"{key}_muted"] = self.action == "mute"
            if not changes:
                raise BadRequest("Say which of audio and video.")
        room = lobby_services.room_set_state(room=room, actor=self.actor(request), **changes)
        return Response({"room": lobby_events.room_payload(room)})
