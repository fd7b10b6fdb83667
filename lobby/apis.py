"""REST API (SPEC §4): thin views over the same services the socket uses."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from . import analytics, events, selectors, services, tokens
from .auth import ApiKeyUser
from .errors import AnteroomError, BadRequest, Unavailable
from .models import Room


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map every error to ``{"error": {"code", "message"}}``, always rendered as JSON (also
    when the request asked for CSV)."""
    request = context.get("request")
    if request is not None:
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = "application/json"
    if isinstance(exc, AnteroomError):
        resp = Response({"error": exc.as_dict()}, status=exc.http_status)
        if exc.http_status == 503:
            resp["Retry-After"] = "5"
        return resp
    if isinstance(exc, (OperationalError, InterfaceError, DatabaseError)):
        resp = Response({"error": Unavailable().as_dict()}, status=503)
        resp["Retry-After"] = "5"
        return resp
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = {
        401: "UNAUTHENTICATED",
        403: "INVALID_PERMISSIONS",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        406: "NOT_ACCEPTABLE",
        415: "UNSUPPORTED_MEDIA_TYPE",
        429: "RATE_LIMITED",
    }.get(response.status_code, "BAD_REQUEST")
    detail = response.data.get("detail") if isinstance(response.data, dict) else None
    message = str(detail) if detail else "Bad request."
    response.data = {"error": {"code": code, "message": message}}
    return response


# Helpers -------------------------------------------------------------------------------------


def _body(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    return data


def _listing(items: list[Any]) -> Response:
    return Response({"total_count": len(items), "data": items})


class BaseApi(APIView):
    def actor(self, request: Request) -> services.Actor:
        user = request.user
        assert isinstance(user, ApiKeyUser)
        return user.actor


def _room_props(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties", {})
    if not isinstance(props, dict):
        raise BadRequest("properties must be an object.")
    fields = dict(props)
    if "privacy" in body:
        fields["privacy"] = body["privacy"]
    return fields


# Rooms ---------------------------------------------------------------------------------------


class RoomListApi(BaseApi):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT}, summary="List rooms", operation_id="rooms_list"
    )
    def get(self, request: Request) -> Response:
        return _listing([events.room_payload(r) for r in Room.objects.filter(parent__isnull=True)])

    @extend_schema(
        request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT}, summary="Create a room"
    )
    def post(self, request: Request) -> Response:
        body = _body(request)
        unknown = set(body) - {"name", "privacy", "properties"}
        if unknown:
            raise BadRequest(f"Unknown fields: {', '.join(sorted(unknown))}.")
        room = services.room_create(name=body.get("name"), **_room_props(body))
        return Response(events.room_payload(room))


class RoomDetailApi(BaseApi):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT}, summary="Read a room", operation_id="rooms_read"
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(events.room_payload(services.get_room(name)))

    @extend_schema(
        request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT}, summary="Change a room"
    )
    def patch(self, request: Request, name: str) -> Response:
        body = _body(request)
        unknown = set(body) - {"privacy", "properties"}
        if unknown:
            raise BadRequest(f"Unknown fields: {', '.join(sorted(unknown))}.")
        room = services.room_update(room=services.get_room(name), **_room_props(body))
        return Response(events.room_payload(room))

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Delete a room")
    def delete(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        services.room_delete(room=room)
        return Response({"deleted": True, "name": name})


# Meeting tokens ------------------------------------------------------------------------------

TOKEN_PROPS = {
    "room_name",
    "is_owner",
    "user_name",
    "user_id",
    "is_viewer",
    "exp",
    "grant",
    "join_policy",
}


class MeetingTokenApi(BaseApi):
    @extend_schema(
        request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT}, summary="Mint a token"
    )
    def post(self, request: Request) -> Response:
        body = _body(request)
        props = body.get("properties", {})
        if not isinstance(props, dict):
            raise BadRequest("properties must be an object.")
        unknown = set(props) - TOKEN_PROPS
        if unknown:
            raise BadRequest(f"Unknown properties: {', '.join(sorted(unknown))}.")
        room_name = props.get("room_name")
        if room_name is not None:
            services.get_room(str(room_name))
        token = tokens.mint_token(
            room=room_name,
            sub=props.get("user_id"),
            name=props.get("user_name"),
            owner=props.get("is_owner", False),
            viewer=props.get("is_viewer", False),
            grant=props.get("grant"),
            join_policy=props.get("join_policy"),
            exp=props.get("exp"),
            issued_by=self.actor(request).by,
        )
        return Response({"token": token})


class MeetingTokenDecodeApi(BaseApi):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        summary="Validate a token",
    )
    def post(self, request: Request) -> Response:
        body = _body(request)
        claims = tokens.verify_token(body.get("token"))
        return Response(claims.as_dict())


class MeetingTokenRevokeApi(BaseApi):
    @extend_schema(
        request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT}, summary="Revoke a token"
    )
    def post(self, request: Request) -> Response:
        jti = _body(request).get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 64:
            raise BadRequest("jti must be a string.")
        changed = services.token_revoke(jti=jti, by=self.actor(request).by)
        return Response({"jti": jti, "revoked": True, "effective": changed})


# Entry requests and participants -------------------------------------------------------------


class EntryRequestListApi(BaseApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=["pending", "admitted", "denied", "canceled"])
        ],
        responses={200: OpenApiTypes.OBJECT},
        summary="List entry requests",
    )
    def get(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        status = request.query_params.get("status", "pending")
        if status not in ("pending", "admitted", "denied", "canceled"):
            raise BadRequest("status must be pending, admitted, denied or canceled.")
        return _listing(
            [
                events.request_full_payload(r)
                for r in selectors.entry_requests(room=room, status=status)
            ]
        )


class EntryRequestDecideApi(BaseApi):
    outcome = "admitted"

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, name: str, request_id: str) -> Response:
        room = services.get_room(name)
        body = request.data if isinstance(request.data, dict) else {}
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            raise BadRequest("reason must be a string.")
        d = services.entry_request_decide(
            room=room,
            request_id=request_id,
            actor=self.actor(request),
            outcome=self.outcome,
            reason=reason,
        )
        return Response(
            {"request_id": str(d.request.id), "outcome": d.outcome, "effective": d.effective}
        )


class EntryRequestAdmitApi(EntryRequestDecideApi):
    outcome = "admitted"


class EntryRequestDenyApi(EntryRequestDecideApi):
    outcome = "denied"


class ParticipantListApi(BaseApi):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Who is in the room")
    def get(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        return _listing(
            [events.participant_payload(p) for p in selectors.participants_present(room=room)]
        )


# Audit trail and analytics -------------------------------------------------------------------

AUDIT_COLUMNS = ("at", "room", "actor", "action", "request_id", "subject", "data")
AUDIT_MAX_LIMIT = 100_000


def _csv_cell(value: Any) -> str:
    """A CSV cell that spreadsheets will not run as a formula (CSV injection)."""
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"), sort_keys=True)
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class AuditCsvRenderer(BaseRenderer):
    """``?format=csv`` or ``Accept: text/csv``: the audit rows with a header row."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out)
        # Errors never reach this renderer: the exception handler renders them as JSON.
        writer.writerow(AUDIT_COLUMNS)
        for row in (data or {}).get("data", []):
            writer.writerow([_csv_cell(row.get(c)) for c in AUDIT_COLUMNS])
        return out.getvalue().encode()


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
        responses={200: OpenApiTypes.OBJECT},
        summary="The room's audit trail (JSON, or CSV with ?format=csv / Accept: text/csv)",
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
        responses={200: OpenApiTypes.OBJECT},
        summary="Lobby analytics: time to admit, abandonment rate, peak queue, counts",
    )
    def get(self, request: Request, name: str) -> Response:
        room = services.get_room(name)
        since = analytics.parse_since(request.query_params.get("since"))
        return Response(analytics.room_analytics(room=room, since=since))
