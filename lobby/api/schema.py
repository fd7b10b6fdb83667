"""OpenAPI (``/api/schema/``): the API-key scheme, pydantic models as components, and the shapes
of the REST responses.

Request bodies are the strict models of :mod:`lobby.commands` (and ``breakouts.commands``),
documented as they validate (JSON Schema ``validation`` mode). Responses are the pydantic models
below, documented as they serialise; tests validate real responses against this document, so
a field added to a payload without its documentation fails them (``extra="forbid"``).
"""

from __future__ import annotations

import typing
import uuid
from datetime import datetime
from typing import Any, Literal

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode, model_json_schema

from lobby.commands import Mode, Privacy, Role

# Extensions -----------------------------------------------------------------------------------


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "lobby.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `manage.py create_api_key NAME` or the admin.",
        }


class PydanticModel(OpenApiSerializerExtension):
    """Any pydantic model given to ``@extend_schema``: a component named by the model's
    ``title`` (or class name). Unlike ``drf_spectacular.contrib.pydantic`` (which always
    describes the serialised form), a request body is described as it is validated."""

    target_class = "pydantic.BaseModel"
    match_subclasses = True
    priority = 1  # over drf_spectacular.contrib.pydantic.PydanticExtension

    def get_name(self, auto_schema: Any, direction: str) -> str:
        return component_name(self.target)

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        mode: JsonSchemaMode = "validation" if direction == "request" else "serialization"
        # pydantic names nested definitions by class; components are named by title.
        nested = {m.__name__: m for m in nested_models(self.target)}
        names = {name: component_name(m) for name, m in nested.items()}
        schema = _rename_refs(
            model_json_schema(self.target, ref_template="{model}", mode=mode), names
        )
        for name, sub in schema.pop("$defs", {}).items():
            component = names.get(name, name)
            auto_schema.registry.register_on_missing(
                ResolvedComponent(
                    name=component,
                    type=ResolvedComponent.SCHEMA,
                    object=nested.get(name, component),
                    schema=sub,
                )
            )
        schema.pop("title", None)
        return schema


def component_name(model: type[BaseModel]) -> str:
    """A model's OpenAPI component name: its ``title``, else its class name."""
    return str(model.model_config.get("title") or model.__name__)


def nested_models(model: type[BaseModel]) -> set[type[BaseModel]]:
    """Every pydantic model that ``model``'s fields refer to, at any depth."""
    found: set[type[BaseModel]] = set()
    todo: list[Any] = [f.annotation for f in model.model_fields.values()]
    while todo:
        hint = todo.pop()
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            if hint not in found:
                found.add(hint)
                todo.extend(f.annotation for f in hint.model_fields.values())
        else:
            todo.extend(typing.get_args(hint))
    return found


def _rename_refs(node: Any, names: dict[str, str]) -> Any:
    """Point ``$ref``s at components: ``{"$ref": "RoomOut"}`` → ``#/components/schemas/Room``."""
    if isinstance(node, dict):
        out = {k: _rename_refs(v, names) for k, v in node.items()}
        if isinstance(out.get("$ref"), str):
            out["$ref"] = "#/components/schemas/" + names.get(out["$ref"], out["$ref"])
        return out
    if isinstance(node, list):
        return [_rename_refs(v, names) for v in node]
    return node


# Response shapes -------------------------------------------------------------------------------


RequestStatus = Literal["pending", "admitted", "denied", "canceled"]
ParticipantStatus = Literal["active", "paused", "left"]
JoinMode = Literal["direct", "ask"]
# Names of the choice sets that share a field name ("mode", "status"): ENUM_NAME_OVERRIDES.
ROOM_MODES = list(typing.get_args(Mode))
JOIN_MODES = list(typing.get_args(JoinMode))
REQUEST_STATUSES = list(typing.get_args(RequestStatus))
PARTICIPANT_STATUSES = list(typing.get_args(ParticipantStatus))


class Shape(BaseModel):
    """A documented response body (every key is listed: ``extra="forbid"``)."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Shape):
    code: str = Field(description="A stable machine code, e.g. ROOM_NOT_FOUND.")
    message: str
    legacy_code: int | None = Field(default=None, description="BREAKOUT_LECTURE_MODE only: 5067.")


class ErrorResponse(Shape):
    model_config = ConfigDict(title="Error")
    error: ErrorDetail


class RoomOut(Shape):
    model_config = ConfigDict(title="Room")
    name: str
    privacy: Privacy
    mode: Mode
    enable_knocking: bool
    max_active_talkers: int
    knock_ttl: int
    max_participants: int | None
    opens_at: datetime | None = Field(description="Appointment window start (null: none).")
    closes_at: datetime | None = Field(description="Appointment window end (null: none).")
    paused: bool
    audio_muted: bool
    video_muted: bool
    created_at: datetime


class RoomListOut(Shape):
    model_config = ConfigDict(title="RoomList")
    total_count: int
    data: list[RoomOut]


class RoomStateOut(Shape):
    model_config = ConfigDict(title="RoomState")
    room: RoomOut


class RoomDeletedOut(Shape):
    model_config = ConfigDict(title="RoomDeleted")
    deleted: Literal[True]
    name: str


class ParticipantOut(Shape):
    model_config = ConfigDict(title="Participant")
    participant_id: str
    name: str
    role: Role
    status: ParticipantStatus
    breakout_id: uuid.UUID | None = Field(description="The breakout room it is in, if any.")


class ParticipantListOut(Shape):
    model_config = ConfigDict(title="ParticipantList")
    total_count: int
    data: list[ParticipantOut]


class EntryRequestOut(Shape):
    model_config = ConfigDict(title="EntryRequest")
    id: uuid.UUID
    participant_id: str
    name: str
    metadata: dict[str, Any]
    requested_at: datetime
    expires_at: datetime
    status: RequestStatus
    connected: bool
    room: str
    cancel_reason: Literal["aborted", "disconnected", "timeout"] | None
    resolved_by: str | None = Field(
        description="The deciding moderator's participant id, api:<key> or staff:<username>."
    )
    resolved_at: datetime | None


class EntryRequestListOut(Shape):
    model_config = ConfigDict(title="EntryRequestList")
    total_count: int
    data: list[EntryRequestOut]


class DecisionOut(Shape):
    model_config = ConfigDict(title="Decision")
    request_id: uuid.UUID
    outcome: RequestStatus = Field(
        description="What this call decided, or (effective false) the request's status."
    )
    effective: bool = Field(description="False when the request was no longer pending.")


class TokenOut(Shape):
    model_config = ConfigDict(title="MeetingToken")
    token: str


class GrantOut(Shape):
    model_config = ConfigDict(title="Grant")
    canPublish: bool
    canSubscribe: bool
    canPublishData: bool
    canSubscribeData: bool
    canModerate: bool


class JoinPolicyOut(Shape):
    model_config = ConfigDict(title="JoinPolicyClaim")
    mode: JoinMode
    ttl: int | None = Field(default=None, description="Seconds a knock waits (ask only).")


class ClaimsOut(Shape):
    model_config = ConfigDict(title="Claims")
    room: str | None
    sub: str | None
    name: str | None
    owner: bool
    viewer: bool
    grant: GrantOut
    joinPolicy: JoinPolicyOut
    jti: str | None
    iat: int | None
    exp: int
    aud: Literal["anteroom"]


class RevokedOut(Shape):
    model_config = ConfigDict(title="Revoked")
    jti: str
    revoked: Literal[True]
    effective: bool = Field(description="False when it was revoked already.")


class AuditRowOut(Shape):
    model_config = ConfigDict(title="AuditEvent")
    at: datetime
    room: str
    actor: str
    action: str
    request_id: uuid.UUID | None
    subject: str
    data: dict[str, Any]


class AuditListOut(Shape):
    model_config = ConfigDict(title="AuditList")
    total_count: int
    data: list[AuditRowOut]


class TimeToAdmitOut(Shape):
    model_config = ConfigDict(title="TimeToAdmit")
    count: int
    p50: float | None
    p90: float | None
    mean: float | None
    max: float | None


class AnalyticsOut(Shape):
    model_config = ConfigDict(title="Analytics")
    room: str
    since: datetime | None
    until: datetime
    knocks: int
    admitted: int
    denied: int
    canceled: int
    cancel_reasons: dict[str, int]
    resolved: int
    abandonment_rate: float | None
    time_to_admit: TimeToAdmitOut
    peak_queue: int
    peak_queue_at: datetime | None
    waiting: int
    actions: dict[str, int]


def responses(ok: int, model: type[BaseModel], *errors: int) -> dict[int, type[BaseModel]]:
    """``@extend_schema(responses=…)``: the success and the error statuses an operation has
    (401 always: every operation needs an API key)."""
    return {ok: model, **{status: ErrorResponse for status in sorted({401, *errors})}}
