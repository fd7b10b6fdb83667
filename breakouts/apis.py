"""Breakouts' REST (SPEC §4): body → strict command (``breakouts.commands``) → one service.

Authentication, the error shape and the list shape are the core API's (``lobby.api``). The actor
is the API key (``api:<key name>``), a moderator. Parent-room control (pause/resume/mute/unmute)
is the core's (``lobby.api.views``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from drf_spectacular.utils import extend_schema
from pydantic import ConfigDict, Field
from rest_framework.request import Request
from rest_framework.response import Response

from lobby import events as lobby_events
from lobby import services as lobby_services
from lobby.api.schema import ParticipantOut, RoomOut, Shape, responses
from lobby.api.views import BaseApi, listing, request_body
from lobby.commands import EmptyBody

from . import services
from .commands import (
    BreakoutBroadcastBody,
    BreakoutCreateAndInvite,
    BreakoutCreateBody,
    BreakoutExtendBody,
    BreakoutInviteBody,
    BreakoutMoveBody,
)
from .selectors import breakout_room_with_members, breakout_rooms_payload

# Response shapes (OpenAPI) -------------------------------------------------------------------


class BreakoutRoomOut(Shape):
    model_config = ConfigDict(title="BreakoutRoom")
    id: uuid.UUID
    name: str
    number: int
    capacity: int
    audio: bool
    video: bool
    canvas: bool
    share: bool
    members: list[ParticipantOut]
    ends_at: datetime | None = Field(description="When a timer returns everyone.")


class BreakoutRoomListOut(Shape):
    model_config = ConfigDict(title="BreakoutRoomList")
    total_count: int
    data: list[BreakoutRoomOut]


class BreakoutsCreatedOut(Shape):
    model_config = ConfigDict(title="BreakoutsCreated")
    rooms: list[BreakoutRoomOut]
    assignments: dict[str, list[str]] | None = Field(
        default=None, description="With invite: room id -> the participant ids spread into it."
    )


class BreakoutInvitedOut(Shape):
    model_config = ConfigDict(title="BreakoutInvited")
    room_id: uuid.UUID
    clients: list[str] = Field(description="Who was invited or moved (members already skipped).")
    force_join: bool


class BreakoutMovedOut(Shape):
    model_config = ConfigDict(title="BreakoutMoved")
    participant: ParticipantOut


class BreakoutBroadcastOut(Shape):
    model_config = ConfigDict(title="BreakoutBroadcastSent")
    rooms: int = Field(description="How many rooms it went to.")


class BreakoutRoomsOut(Shape):
    model_config = ConfigDict(title="BreakoutRooms")
    rooms: list[BreakoutRoomOut]


class BreakoutsClearedOut(Shape):
    model_config = ConfigDict(title="BreakoutsCleared")
    count: int = Field(description="How many participants returned to the parent.")
    rooms: int = Field(description="Rooms kept (clear) or deleted (destroy).")


class BreakoutsDestroyedOut(BreakoutsClearedOut):
    model_config = ConfigDict(title="BreakoutsDestroyed")
    room: RoomOut


# Views -----------------------------------------------------------------------------------------

_BREAKOUT_ERRORS = (400, 403, 404, 409)


class BreakoutListApi(BaseApi):
    @extend_schema(
        responses=responses(200, BreakoutRoomListOut, 404),
        summary="Breakout rooms with members",
        operation_id="v1_rooms_breakouts_retrieve",
    )
    def get(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        return listing(breakout_rooms_payload(parent=room))

    @extend_schema(
        request=BreakoutCreateBody,
        responses=responses(201, BreakoutsCreatedOut, *_BREAKOUT_ERRORS),
        summary="Create breakout rooms (with invite: true, create and invite)",
        operation_id="v1_rooms_breakouts_create",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        command = BreakoutCreateBody.parse(request_body(request)).command()
        actor = self.actor(request)
        if isinstance(command, BreakoutCreateAndInvite):
            rooms, assignments = services.breakout_rooms_create_and_invite(
                parent=room, actor=actor, force_join=command.force_join, **command.options()
            )
            ids = {str(r.pk) for r in rooms}
            payload = [r for r in breakout_rooms_payload(parent=room) if r["id"] in ids]
            return Response({"rooms": payload, "assignments": assignments}, status=201)
        rooms = services.breakout_rooms_create(parent=room, actor=actor, **command.options())
        return Response({"rooms": [breakout_room_with_members(room=r) for r in rooms]}, status=201)


class BreakoutInviteApi(BaseApi):
    @extend_schema(
        request=BreakoutInviteBody,
        responses=responses(200, BreakoutInvitedOut, *_BREAKOUT_ERRORS),
        summary="Invite (or with force_join move) participants into a breakout room",
        operation_id="v1_rooms_breakouts_invite_create",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        body = BreakoutInviteBody.parse(request_body(request))
        invited = services.breakout_invite(
            parent=room,
            actor=self.actor(request),
            room_id=body.room_id,
            clients=body.clients,
            force_join=body.force_join,
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
        request=BreakoutMoveBody,
        responses=responses(200, BreakoutMovedOut, *_BREAKOUT_ERRORS),
        summary="Move a participant into a breakout room, or back (room_id null)",
        operation_id="v1_rooms_breakouts_move_create",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        body = BreakoutMoveBody.parse(request_body(request))
        p = services.breakout_move(
            parent=room,
            actor=self.actor(request),
            participant_id=body.participant_id,
            room_id=body.room_id,
        )
        return Response({"participant": lobby_events.participant_payload(p)})


class BreakoutBroadcastApi(BaseApi):
    @extend_schema(
        request=BreakoutBroadcastBody,
        responses=responses(200, BreakoutBroadcastOut, *_BREAKOUT_ERRORS),
        summary="Send a message to every breakout room",
        operation_id="v1_rooms_breakouts_broadcast_create",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        body = BreakoutBroadcastBody.parse(request_body(request))
        n = services.breakout_broadcast(parent=room, actor=self.actor(request), text=body.text)
        return Response({"rooms": n})


class BreakoutExtendApi(BaseApi):
    @extend_schema(
        request=BreakoutExtendBody,
        responses=responses(200, BreakoutRoomsOut, *_BREAKOUT_ERRORS),
        summary="Extend the timer of one breakout room (room_id) or of all",
        operation_id="v1_rooms_breakouts_extend_create",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        body = BreakoutExtendBody.parse(request_body(request))
        rooms = services.breakout_extend(
            parent=room, actor=self.actor(request), room_id=body.room_id, seconds=body.seconds
        )
        return Response({"rooms": [breakout_room_with_members(room=r) for r in rooms]})


class BreakoutClearApi(BaseApi):
    @extend_schema(
        request=EmptyBody,
        responses=responses(200, BreakoutsClearedOut, *_BREAKOUT_ERRORS),
        summary="Return everyone to the parent room (rooms are kept)",
        operation_id="v1_rooms_breakouts_clear_create",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        EmptyBody.parse(request_body(request))
        done = services.breakout_rooms_clear_all(parent=room, actor=self.actor(request))
        return Response({"count": len(done.returned), "rooms": done.rooms})


class BreakoutDestroyApi(BaseApi):
    @extend_schema(
        request=EmptyBody,
        responses=responses(200, BreakoutsDestroyedOut, *_BREAKOUT_ERRORS),
        summary="Return everyone, delete the breakout rooms, resume and unmute the parent",
        operation_id="v1_rooms_breakouts_destroy_create",
    )
    def post(self, request: Request, name: str) -> Response:
        room = lobby_services.get_room(name)
        EmptyBody.parse(request_body(request))
        done = services.breakout_rooms_destroy_all(parent=room, actor=self.actor(request))
        return Response(
            {
                "count": len(done.returned),
                "rooms": done.rooms,
                "room": lobby_events.room_payload(done.parent),
            }
        )
