"""REST views (SPEC §4): body → strict command (``lobby.commands``) → one service → response.

Every view authenticates with an API key (``lobby.api.auth``; the actor is ``api:<key name>``, a
moderator), looks up the room of its path first (``ROOM_NOT_FOUND``), then validates the body.
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.exceptions import NotAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lobby import analytics, events, selectors, services, tokens
from lobby.commands import (
    EmptyBody,
    EntryRequestDecisionBody,
    MeetingTokenDecodeBody,
    MeetingTokenMintBody,
    MeetingTokenRevokeBody,
    RoomCreateBody,
    RoomMuteBody,
    RoomPause,
    RoomResume,
    RoomUpdateBody,
    path_uuid,
)
from lobby.errors import BadRequest, RequestNotFound
from lobby.models import Room

from .auth import ApiKeyUser
from .renderers import AuditCsvRenderer
from .schema import (
    AnalyticsOut,
    AuditListOut,
    ClaimsOut,
    DecisionOut,
    EntryRequestListOut,
    ParticipantListOut,
    RevokedOut,
    RoomDeletedOut,
    RoomListOut,
    RoomOut,
    RoomStateOut,
    TokenOut,
    responses,
)

AUDIT_MAX_LIMIT = 100_000
REQUEST_STATUSES = ("pending", "admitted", "denied", "canceled")

# Helpers -------------------------------------------------------------------------------------


def request_body(request: Request) -> Any:
    """The decoded JSON body, for a command's ``parse``; no body at all is ``{}``."""
    data = request.data
    return {} if isinstance(data, QueryDict) and not data else data


def listing(items: list[Any]) -> Response:
    """Daily's list shape: ``{"total_count": N, "data": [...]}``."""
    return Response({"total_count": len(items), "data": items})


class BaseApi(APIView):
    def actor(self, request: Request) -> services.Actor:
        user = request.user
        if not isinstance(user, ApiKeyUser):
            raise NotAuthenticated()
        return user.actor


# Rooms ---------------------------------------------------------------------------------------


class RoomListApi(BaseApi):
    @extend_schema(
        responses=responses(200, RoomListOut), summary="List rooms", operation_id="rooms_list"
    )
    def get(self, request: Request) -> Response:
        return listing([events.room_payload(r) for r in Room.objects.filter(parent__isnull=True)])

    @extend_schema(
        request=RoomCreateBody,
        responses=responses(200, RoomOut, 400, 409),
        summary="Create a room",
        operation_id="v1_rooms_create",
    )
    def post(self, request: Request) -> Response:
        body = RoomCreateBody.parse(request_body(request))
        room = services.room_create(actor=self.actor(request), name=body.name, **body.fields())
        return Response(events.room_payload(room))


class RoomDetailApi(BaseApi):
    @extend_schema(
        responses=responses(200, RoomOut, 404), summary="Read a room", operation_id="rooms_read"
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(events.room_payload(services.get_room(name)))

    @extend_schema(
        request=RoomUpdateBody,
        responses=responses(200, RoomOut, 400, 404, 409),
        summary="Change a room",
        operation_id="v1_rooms_partial_update",
    )
    def patch(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        body = RoomUpdateBody.parse(request_body(request))
        room = services.room_update(room=room, actor=self.actor(request), **body.fields())
        return Response(events.room_payload(room))

    @extend_schema(
        responses=responses(200, RoomDeletedOut, 404),
        summary="Delete a room (connected sockets are closed with 4404)",
        operation_id="v1_rooms_destroy",
    )
    def delete(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        services.room_delete(room=room, actor=self.actor(request))
        return Response({"deleted": True, "name": name})


# Room control (the parent room's state; the socket's room-pause/-resume/-mute/-unmute) --------


class _RoomControlApi(BaseApi):
    """``POST /rooms/{name}/<action>`` → ``{room}``, like the socket's ack."""

    def changes(self, body: Any) -> dict[str, bool]:
        raise NotImplementedError

    def post(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        changes = self.changes(request_body(request))
        room = services.room_set_state(room=room, actor=self.actor(request), **changes)
        return Response({"room": events.room_payload(room)})


_CONTROL_RESPONSES = responses(200, RoomStateOut, 400, 404)


@extend_schema_view(
    post=extend_schema(
        request=EmptyBody,
        responses=_CONTROL_RESPONSES,
        summary="Pause the room",
        operation_id="v1_rooms_pause_create",
    )
)
class RoomPauseApi(_RoomControlApi):
    def changes(self, body: Any) -> dict[str, bool]:
        EmptyBody.parse(body)
        return RoomPause().changes()


@extend_schema_view(
    post=extend_schema(
        request=EmptyBody,
        responses=_CONTROL_RESPONSES,
        summary="Resume the room",
        operation_id="v1_rooms_resume_create",
    )
)
class RoomResumeApi(_RoomControlApi):
    def changes(self, body: Any) -> dict[str, bool]:
        EmptyBody.parse(body)
        return RoomResume().changes()


@extend_schema_view(
    post=extend_schema(
        request=RoomMuteBody,
        responses=_CONTROL_RESPONSES,
        summary="Mute the room's audio and/or video",
        operation_id="v1_rooms_mute_create",
    )
)
class RoomMuteApi(_RoomControlApi):
    def changes(self, body: Any) -> dict[str, bool]:
        return RoomMuteBody.parse(body).changes(muted=True)


@extend_schema_view(
    post=extend_schema(
        request=RoomMuteBody,
        responses=_CONTROL_RESPONSES,
        summary="Unmute the room's audio and/or video",
        operation_id="v1_rooms_unmute_create",
    )
)
class RoomUnmuteApi(_RoomControlApi):
    def changes(self, body: Any) -> dict[str, bool]:
        return RoomMuteBody.parse(body).changes(muted=False)


# Meeting tokens ------------------------------------------------------------------------------


class MeetingTokenMintApi(BaseApi):
    @extend_schema(
        request=MeetingTokenMintBody,
        responses=responses(200, TokenOut, 400, 404),
        summary="Mint a meeting token",
        operation_id="v1_meeting_tokens_create",
    )
    def post(self, request: Request) -> Response:
        body = MeetingTokenMintBody.parse(request_body(request))
        claims = body.claims()
        if claims["room"] is not None:
            services.get_room(claims["room"])
        token = tokens.mint_token(**claims, issued_by=self.actor(request).by)
        return Response({"token": token})


class MeetingTokenDecodeApi(BaseApi):
    @extend_schema(
        request=MeetingTokenDecodeBody,
        responses=responses(200, ClaimsOut, 400),
        summary="Validate a token (POST, so tokens stay out of URLs and access logs)",
        operation_id="v1_meeting_tokens_decode_create",
    )
    def post(self, request: Request) -> Response:
        body = MeetingTokenDecodeBody.parse(request_body(request))
        return Response(tokens.verify_token(body.token).as_dict())


class MeetingTokenRevokeApi(BaseApi):
    @extend_schema(
        request=MeetingTokenRevokeBody,
        responses=responses(200, RevokedOut, 400),
        summary="Revoke a token by jti (also hand-made ones)",
        operation_id="v1_meeting_tokens_revoke_create",
    )
    def post(self, request: Request) -> Response:
        body = MeetingTokenRevokeBody.parse(request_body(request))
        changed = services.token_revoke(jti=body.jti, by=self.actor(request).by)
        return Response({"jti": body.jti, "revoked": True, "effective": changed})


# Entry requests and participants -------------------------------------------------------------


class EntryRequestListApi(BaseApi):
    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=list(REQUEST_STATUSES))],
        responses=responses(200, EntryRequestListOut, 400, 404),
        summary="List entry requests (pending unless ?status= says otherwise)",
        operation_id="v1_rooms_entry_requests_retrieve",
    )
    def get(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        status = request.query_params.get("status", "pending")
        if status not in REQUEST_STATUSES:
            raise BadRequest("status must be pending, admitted, denied or canceled.")
        return listing(
            [
                events.request_full_payload(r)
                for r in selectors.entry_requests(room=room, status=status)
            ]
        )


class _EntryRequestDecideApi(BaseApi):
    outcome = "admitted"

    def post(self, request: Request, name: str, request_id: str) -> Response:
        room = services.get_room(name)
        body = EntryRequestDecisionBody.parse(request_body(request))
        d = services.entry_request_decide(
            room=room,
            request_id=path_uuid(request_id, RequestNotFound),
            actor=self.actor(request),
            outcome=self.outcome,
            reason=body.reason,
        )
        return Response(
            {"request_id": str(d.request.id), "outcome": d.outcome, "effective": d.effective}
        )


_DECISION_RESPONSES = responses(200, DecisionOut, 400, 404)


@extend_schema_view(
    post=extend_schema(
        request=EntryRequestDecisionBody,
        responses=_DECISION_RESPONSES,
        summary="Admit a knock (the first decision wins; later ones are no-ops)",
        operation_id="v1_rooms_entry_requests_admit_create",
    )
)
class EntryRequestAdmitApi(_EntryRequestDecideApi):
    outcome = "admitted"


@extend_schema_view(
    post=extend_schema(
        request=EntryRequestDecisionBody,
        responses=_DECISION_RESPONSES,
        summary="Deny a knock; the guest reads the reason (the first decision wins)",
        operation_id="v1_rooms_entry_requests_deny_create",
    )
)
class EntryRequestDenyApi(_EntryRequestDecideApi):
    outcome = "denied"


class ParticipantListApi(BaseApi):
    @extend_schema(
        responses=responses(200, ParticipantListOut, 404),
        summary="Who is in the room",
        operation_id="v1_rooms_participants_retrieve",
    )
    def get(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        return listing(
            [events.participant_payload(p) for p in selectors.participants_present(room=room)]
        )


# Audit trail and analytics -------------------------------------------------------------------


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 0 <= int(raw) <= maximum:
        raise BadRequest(f"{name} must be an integer from 0 to {maximum}.")
    return int(raw)


class AuditApi(BaseApi):
    renderer_classes = [JSONRenderer, AuditCsvRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
        ],
        responses=responses(200, AuditListOut, 400, 404),
        summary="The room's audit trail (JSON, or CSV with ?format=csv / Accept: text/csv)",
        operation_id="v1_rooms_audit_retrieve",
    )
    def get(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        since = analytics.parse_since(request.query_params.get("since"))
        limit = _int_param(request, "limit", 1000, AUDIT_MAX_LIMIT)
        offset = _int_param(request, "offset", 0, 10**9)
        qs = analytics.audit_events(room=room, since=since)
        total = qs.count()
        rows = [analytics.audit_payload(e) for e in qs[offset : offset + limit]]
        resp = Response({"total_count": total, "data": rows})
        resp["X-Total-Count"] = str(total)
        if (
            getattr(request, "accepted_renderer", None)
            and request.accepted_renderer.format == "csv"
        ):
            resp["Content-Disposition"] = f'attachment; filename="anteroom-audit-{room.name}.csv"'
        return resp


class AnalyticsApi(BaseApi):
    @extend_schema(
        parameters=[OpenApiParameter("since", OpenApiTypes.DATETIME)],
        responses=responses(200, AnalyticsOut, 400, 404),
        summary="Lobby analytics: time to admit, abandonment rate, peak queue, counts",
        operation_id="v1_rooms_analytics_retrieve",
    )
    def get(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        since = analytics.parse_since(request.query_params.get("since"))
        return Response(analytics.room_analytics(room=room, since=since))
