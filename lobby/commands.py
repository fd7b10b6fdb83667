"""One strict schema per inbound message: socket frames (SPEC §3) and REST bodies (SPEC §4).

Both surfaces validate what a client sends here, before any service runs, so a service receives
typed values (``UUID``, ``int``, ``bool``, ``str``) and keeps only the rules that need the
database. Every model is pydantic v2 with ``strict=True`` (``"1"`` is not an integer, ``1`` is not
a boolean) and ``extra="forbid"`` (an unknown field is refused, never ignored); duplicate JSON keys
are refused earlier, by :mod:`lobby.strict_json`.

A refusal is an :class:`~lobby.errors.AnteroomError` with the code the API has always given:
``BAD_REQUEST`` for a wrong type, a missing or unknown field or a value out of its SPEC range;
``REQUEST_NOT_FOUND`` for a ``request_id`` that is not a UUID (it names no request);
``INVALID_ENTRY_CLAIM`` for a bad meeting-token property and ``INVALID_TOKEN`` for a token that is
not a string. Messages are short and never repeat what the client sent (not even the name of an
unknown field).

Entry points:

* ``Model.parse(data)``: one REST body (or any dict) → the model, or raise the refusal;
* :func:`decode_frame` (text → dict, the transport checks) then :func:`parse_message`
  (dict → :class:`Message`), or both at once with :func:`parse_client_frame`. The socket's
  messages are one discriminated union on ``type``; breakouts add theirs with :func:`register`.
"""

from __future__ import annotations

import functools
import json
import operator
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from django.conf import settings
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from . import strict_json
from .errors import AnteroomError, BadRequest, InvalidEntryClaim, InvalidToken, RequestNotFound
from .models import MAX_PARTICIPANTS, ROOM_NAME_RE
from .text import is_blank
from .tokens import MAX_EXP, MAX_ID_LEN, MAX_NAME_LEN, TTL_MAX, TTL_MIN, Grant

# SPEC §2-§3 ranges -------------------------------------------------------------------------

MAX_DISPLAY_NAME = 100
MAX_METADATA_BYTES = 4096
MAX_RID = 64
MAX_JTI = 64
MAX_FRAME_DEPTH = 16
TALKERS_MIN, TALKERS_MAX = 3, 50
KNOCK_TTL_MIN, KNOCK_TTL_MAX = 10, 600
# Characters a display name may not hold: C0/C1 controls, line/paragraph separators and the
# bidirectional overrides and isolates (they reorder what moderators read).
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

Privacy = Literal["public", "private"]
Mode = Literal["group", "lecture"]
Role = Literal["moderator", "participant", "viewer"]
Outcome = Literal["admitted", "denied"]


# The base -----------------------------------------------------------------------------------


class Command(BaseModel):
    """A strict, immutable schema of something a client sends."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True)

    @classmethod
    def parse(cls, data: Any) -> Self:
        """Validate ``data`` (decoded JSON); raise the refusal as an ``AnteroomError``."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise refusal(exc, cls.refuse) from exc

    @classmethod
    def refuse(cls, error: ErrorDetails) -> AnteroomError:
        """The error one refused field gets (override for other codes)."""
        return _reference_error(error) or BadRequest(describe(error))


def refusal(exc: ValidationError, refuse: Callable[[ErrorDetails], AnteroomError]) -> AnteroomError:
    """One error for a refused input: the first ``BAD_REQUEST`` (a malformed input is told as
    such even when another field also names nothing), else the first other refusal."""
    errors = [refuse(e) for e in exc.errors(include_url=False, include_input=False)]
    return next((e for e in errors if type(e) is BadRequest), errors[0])


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "a boolean",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}
# Messages built only from our own limits (``ctx``), never from the input.
_LIMITS = {
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be more than {gt}",
    "less_than": "must be less than {lt}",
    "too_short": "must have at least {min_length} items",
    "too_long": "must have at most {max_length} items",
    "string_too_short": "must have at least {min_length} characters",
    "string_too_long": "must have at most {max_length} characters",
    "string_pattern_mismatch": "must match {pattern}",
    "literal_error": "must be {expected}",
}


def describe(error: ErrorDetails) -> str:
    """A short message for one pydantic error that never repeats the client's input."""
    where = ".".join(str(p) for p in error["loc"])
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "extra_forbidden":
        return "Unknown fields are not accepted."
    if kind == "value_error":  # our own validators: their messages are ours
        reason = str(ctx.get("error", "not valid"))
        return f"{where}: {reason}." if where else f"{reason}."
    if not where:
        return "The body must be a JSON object." if kind in _TYPE_WORDS else "Bad request."
    if kind == "missing":
        return f"{where} is required."
    if kind in _TYPE_WORDS:
        return f"{where} must be {_TYPE_WORDS[kind]}."
    if kind in _LIMITS:
        try:
            return f"{where} {_LIMITS[kind].format(**ctx)}."
        except KeyError:
            pass
    return f"{where} is not valid."


# Field types ----------------------------------------------------------------------------------

_REFERENCE_ERRORS: dict[str, type[AnteroomError]] = {}


def reference(error: type[AnteroomError]) -> Callable[[Any], uuid.UUID]:
    """A validator for the id of a row: a string that is not a UUID names no row, which is
    ``error`` (e.g. ``REQUEST_NOT_FOUND``), as when the UUID matches none; not a string is
    ``BAD_REQUEST``."""
    _REFERENCE_ERRORS[error.code] = error

    def parse(value: Any) -> uuid.UUID:
        if isinstance(value, uuid.UUID):
            return value
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "Input should be a valid string")
        try:
            return uuid.UUID(value)
        except ValueError:
            raise PydanticCustomError(
                "unknown_reference", "No such {code}", {"code": error.code}
            ) from None

    return parse


def path_uuid(value: str, error: type[AnteroomError]) -> uuid.UUID:
    """An id from a URL path: not a UUID names no row (``error``), as for ``reference``."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise error() from None


def _reference_error(error: ErrorDetails) -> AnteroomError | None:
    if error["type"] != "unknown_reference":
        return None
    return _REFERENCE_ERRORS[error.get("ctx", {})["code"]]()


def uuid_schema(description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "format": "uuid", "description": description})


def _display_name(value: str) -> str:
    value = value.strip()
    if len(value) > MAX_DISPLAY_NAME:
        raise ValueError(f"at most {MAX_DISPLAY_NAME} characters")
    if CONTROL_CHARS.search(value):
        raise ValueError("no control characters")
    return "" if is_blank(value) else value  # nothing visible is no name (lobby/text.py)


def _visible(value: str) -> str:
    """A required name with no visible character is refused exactly as an empty one is."""
    if is_blank(value):
        raise PydanticCustomError(
            "string_too_short",
            "String should have at least {min_length} character",
            {"min_length": 1},
        )
    return value


def _not_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _metadata(value: dict[str, Any]) -> dict[str, Any]:
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
    except ValueError:  # NaN or Infinity from a Python caller: not JSON
        raise ValueError("plain JSON only") from None
    if size > MAX_METADATA_BYTES:
        raise ValueError("at most 4 KiB")
    return value


_DISPLAY_NAME_SCHEMA = {
    "type": "string",
    "maxLength": MAX_DISPLAY_NAME,
    "description": "At most 100 characters (after trimming spaces), no control characters.",
}

RequestRef = Annotated[
    uuid.UUID,
    BeforeValidator(reference(RequestNotFound)),
    uuid_schema("An entry request's id."),
]
# A display name: trimmed, at most 100 characters, no control characters ("" = none given).
DisplayName = Annotated[str, AfterValidator(_display_name), WithJsonSchema(_DISPLAY_NAME_SCHEMA)]
# The same, and not empty once trimmed.
NonEmptyDisplayName = Annotated[
    str,
    AfterValidator(_display_name),
    AfterValidator(_not_blank),
    WithJsonSchema(_DISPLAY_NAME_SCHEMA | {"minLength": 1}),
]
Metadata = Annotated[
    dict[str, Any],
    AfterValidator(_metadata),
    WithJsonSchema(
        {"type": "object", "description": "Any JSON object, at most 4 KiB encoded compactly."}
    ),
]
Rid = Annotated[str, Field(max_length=MAX_RID)] | int
RoomName = Annotated[str, Field(pattern=ROOM_NAME_RE)]
MaxActiveTalkers = Annotated[int, Field(ge=TALKERS_MIN, le=TALKERS_MAX)]
KnockTtl = Annotated[int, Field(ge=KNOCK_TTL_MIN, le=KNOCK_TTL_MAX)]

T = TypeVar("T")


def _not_null[V](value: V | None) -> V:
    if value is None:
        raise ValueError("must not be null")
    return value


def _omit_null(schema: dict[str, Any]) -> None:
    branches = [b for b in schema.pop("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches
    schema.pop("default", None)


def _timestamp(value: Any) -> datetime:
    """An ISO 8601 date and time with a time zone (``2026-12-01T10:00:00Z``), kept in UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date and time") from None
    else:
        raise PydanticCustomError("string_type", "Input should be a valid string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must include a time zone (e.g. 2026-12-01T10:00:00Z)")
    if not TIMESTAMP_MIN <= parsed < TIMESTAMP_MAX:
        raise ValueError("must be between the years 2000 and 2999")
    return parsed.astimezone(UTC)


TIMESTAMP_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TIMESTAMP_MAX = datetime(3000, 1, 1, tzinfo=UTC)
Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 with a time zone, e.g. 2026-12-01T10:00:00Z.",
        }
    ),
]

# A field that may be left out (it then keeps its stored value or default) but is never null.
# Read such fields with ``model_dump(exclude_unset=True)``.
Omittable = Annotated[T | None, AfterValidator(_not_null), Field(json_schema_extra=_omit_null)]


# REST bodies: rooms (Daily's shape) --------------------------------------------------------


class EmptyBody(Command):
    """No fields (the body may also be left out)."""


class RoomProperties(Command):
    """A room's properties; each one left out keeps its stored value (or its default)."""

    privacy: Omittable[Privacy] = Field(
        default=None,
        description="Also accepted here; Daily's place is the body's top level, which wins.",
    )
    enable_knocking: Omittable[bool] = Field(
        default=None, description="Token-less guests of a private room may knock. Default false."
    )
    mode: Omittable[Mode] = Field(default=None, description="Default group.")
    max_active_talkers: Omittable[MaxActiveTalkers] = Field(default=None, description="Default 12.")
    knock_ttl: Omittable[KnockTtl] = Field(
        default=None, description="Seconds a token-less knock waits. Default 60."
    )
    max_participants: Annotated[int, Field(ge=1, le=MAX_PARTICIPANTS)] | None = Field(
        default=None,
        description=(
            "Daily's name: at most this many present at once; more are refused ROOM_FULL "
            "(moderators always enter). null or left out on create: no cap."
        ),
    )
    opens_at: Timestamp | None = Field(
        default=None,
        description=(
            "Appointment window start. A guest who knocks up to ANTEROOM_APPOINTMENT_EARLY "
            "seconds (default 1800) earlier waits for it; earlier knocks are refused "
            "ROOM_NOT_OPEN. Moderators may admit early. null: no start."
        ),
    )
    closes_at: Timestamp | None = Field(
        default=None,
        description=(
            "Appointment window end, after opens_at and at most 24 hours after it. A knock "
            "waits until then (at least knock_ttl after the opening); knocks from then on are "
            "refused ROOM_CLOSED. null: no end."
        ),
    )


# The room fields a client may set (REST, admin).
ROOM_PROPERTIES: tuple[str, ...] = tuple(RoomProperties.model_fields)


class _RoomFields(Command):
    privacy: Omittable[Privacy] = Field(default=None, description="Default public.")
    properties: Omittable[RoomProperties] = None

    def fields(self) -> dict[str, Any]:
        """The room fields this body sets, as keyword arguments for the room services."""
        out: dict[str, Any] = {}
        if self.properties is not None:
            out.update(self.properties.model_dump(exclude_unset=True))
        if self.privacy is not None:
            out["privacy"] = self.privacy
        return out


class RoomCreateBody(_RoomFields):
    """``POST /rooms``: ``{name?, privacy?, properties?}``."""

    name: RoomName | None = Field(
        default=None, description="1-64 of A-Z a-z 0-9 _ -; left out or null: a random name."
    )


class RoomUpdateBody(_RoomFields):
    """``PATCH /rooms/{name}``: ``{privacy?, properties?}`` (a room is never renamed)."""


# REST bodies: meeting tokens ---------------------------------------------------------------


class TokenGrant(Command):
    """What the token's holder may do; each left out has its default."""

    canPublish: bool = Grant.canPublish
    canSubscribe: bool = Grant.canSubscribe
    canPublishData: bool = Grant.canPublishData
    canSubscribeData: bool = Grant.canSubscribeData
    canModerate: bool = Grant.canModerate


class JoinPolicy(Command):
    """``direct`` enters at once; ``ask`` knocks and waits up to ``ttl`` seconds (default 60).
    ``ask`` is refused for moderators and ``ttl`` with ``direct`` (``INVALID_ENTRY_CLAIM``)."""

    mode: Literal["direct", "ask"] = "direct"
    ttl: Annotated[int, Field(ge=TTL_MIN, le=TTL_MAX)] | None = None


class MeetingTokenProperties(Command):
    """The token's claims, in Daily's names. ``null`` is the same as leaving a field out."""

    room_name: str | None = Field(default=None, description="Left out: valid for every room.")
    user_id: Annotated[str, Field(min_length=1, max_length=MAX_ID_LEN)] | None = Field(
        default=None, description="The participant id; left out: a fresh id per connection."
    )
    user_name: (
        Annotated[str, Field(min_length=1, max_length=MAX_NAME_LEN), AfterValidator(_visible)]
        | None
    ) = None
    is_owner: bool = False
    is_viewer: bool = False
    exp: Annotated[int, Field(le=MAX_EXP)] | None = Field(
        default=None, description="Expiry, a future Unix time; left out: 24 hours from now."
    )
    grant: TokenGrant | None = None
    join_policy: JoinPolicy | None = None

    def claims(self) -> dict[str, Any]:
        """Keyword arguments for ``tokens.mint_token`` (without ``issued_by``)."""
        return {
            "room": self.room_name,
            "sub": self.user_id,
            "name": self.user_name,
            "owner": self.is_owner,
            "viewer": self.is_viewer,
            "grant": self.grant.model_dump(exclude_unset=True) if self.grant else None,
            "join_policy": (
                self.join_policy.model_dump(exclude_unset=True) if self.join_policy else None
            ),
            "exp": self.exp,
        }


class MeetingTokenMintBody(Command):
    """``POST /meeting-tokens``: ``{properties}``. A property of the wrong type or out of range
    is ``INVALID_ENTRY_CLAIM``; an unknown property is ``BAD_REQUEST``."""

    properties: Omittable[MeetingTokenProperties] = None

    @classmethod
    def refuse(cls, error: ErrorDetails) -> AnteroomError:
        loc = error["loc"]
        unknown_property = len(loc) == 2 and error["type"] == "extra_forbidden"
        if loc[:1] == ("properties",) and len(loc) >= 2 and not unknown_property:
            return InvalidEntryClaim(describe(error))
        return super().refuse(error)

    def claims(self) -> dict[str, Any]:
        return (self.properties or MeetingTokenProperties()).claims()


class MeetingTokenDecodeBody(Command):
    """``POST /meeting-tokens/decode``: ``{token}``; a missing or non-string token is
    ``INVALID_TOKEN``, like any token that does not verify."""

    token: str

    @classmethod
    def refuse(cls, error: ErrorDetails) -> AnteroomError:
        if error["loc"][:1] == ("token",):
            return InvalidToken()
        return super().refuse(error)


class MeetingTokenRevokeBody(Command):
    """``POST /meeting-tokens/revoke``: ``{jti}``."""

    jti: Annotated[str, Field(min_length=1, max_length=MAX_JTI)]


# Bodies shared by REST and the socket ------------------------------------------------------


class EntryRequestDecisionBody(Command):
    """``POST …/entry-requests/{id}/admit|deny``: ``{reason?}`` (a denied guest reads it)."""

    reason: DisplayName = ""


# The socket's mute flags and the room field each one sets.
MUTE_FLAGS: dict[str, str] = {"audio": "audio_muted", "video": "video_muted"}


class RoomMuteBody(Command):
    """``{audio?, video?}``: which media to mute or unmute; at least one must be true."""

    audio: bool = False
    video: bool = False

    @model_validator(mode="after")
    def _one_of_them(self) -> Self:
        if not (self.audio or self.video):
            raise ValueError("Say which of audio and video")
        return self

    def changes(self, muted: bool) -> dict[str, bool]:
        """``room_set_state`` keyword arguments: ``{"audio_muted": muted, …}``."""
        return {MUTE_FLAGS[k]: muted for k in MUTE_FLAGS if getattr(self, k)}


# Socket messages (SPEC §3) -----------------------------------------------------------------


class Message(Command):
    """A client → server frame: ``type`` names it; ``rid`` (optional) asks for an ``ack``."""

    rid: Rid | None = None


class Preauth(Message):
    type: Literal["preauth"] = "preauth"
    token: str | None = None


class Join(Message):
    type: Literal["join"] = "join"
    token: str | None = None
    name: DisplayName | None = None
    metadata: Metadata | None = None
    resume: str | None = None
    staff: bool = False  # a signed-in Django staff user enters as a moderator


class Cancel(Message):
    type: Literal["cancel"] = "cancel"


class UpdateName(Message):
    type: Literal["update-name"] = "update-name"
    name: NonEmptyDisplayName


class Admit(EntryRequestDecisionBody, Message):
    type: Literal["admit"] = "admit"
    outcome: ClassVar[Outcome] = "admitted"
    request_id: RequestRef


class Deny(EntryRequestDecisionBody, Message):
    type: Literal["deny"] = "deny"
    outcome: ClassVar[Outcome] = "denied"
    request_id: RequestRef


class AdmitAll(Message):
    type: Literal["admit-all"] = "admit-all"
    outcome: ClassVar[Outcome] = "admitted"


class DenyAll(Message):
    type: Literal["deny-all"] = "deny-all"
    outcome: ClassVar[Outcome] = "denied"


class RoomPause(Message):
    type: Literal["room-pause"] = "room-pause"

    def changes(self) -> dict[str, bool]:
        return {"paused": True}


class RoomResume(Message):
    type: Literal["room-resume"] = "room-resume"

    def changes(self) -> dict[str, bool]:
        return {"paused": False}


class RoomMute(RoomMuteBody, Message):
    type: Literal["room-mute"] = "room-mute"

    def changes(self, muted: bool = True) -> dict[str, bool]:
        return super().changes(muted)


class RoomUnmute(RoomMuteBody, Message):
    type: Literal["room-unmute"] = "room-unmute"

    def changes(self, muted: bool = False) -> dict[str, bool]:
        return super().changes(muted)


class Leave(Message):
    type: Literal["leave"] = "leave"


ParticipantId = Annotated[str, Field(min_length=1, max_length=128)]


class ParticipantRemove(Message):
    """A moderator removes a (non-moderator) participant from the room."""

    type: Literal["participant-remove"] = "participant-remove"
    participant_id: ParticipantId


class WaitingRoomMessage(Message):
    """A moderator sets the message everyone waiting sees (``""`` clears it), optionally giving
    every waiting guest ``extend_minutes`` more."""

    type: Literal["lobby-message"] = "lobby-message"
    text: Annotated[str, Field(max_length=300)]
    extend_minutes: Annotated[int, Field(ge=0, le=60)] = 0


class EntryMessage(Message):
    """A moderator's message to one waiting guest."""

    type: Literal["entry-message"] = "entry-message"
    request_id: RequestRef
    text: Annotated[str, Field(min_length=1, max_length=300)]


class ParticipantToLobby(Message):
    """A moderator sends an admitted participant back to the waiting room."""

    type: Literal["participant-to-lobby"] = "participant-to-lobby"
    participant_id: ParticipantId


LobbyMessage = Annotated[
    Preauth
    | Join
    | Cancel
    | UpdateName
    | Admit
    | Deny
    | AdmitAll
    | DenyAll
    | RoomPause
    | RoomResume
    | RoomMute
    | RoomUnmute
    | Leave
    | ParticipantRemove
    | ParticipantToLobby
    | WaitingRoomMessage
    | EntryMessage,
    Field(discriminator="type"),
]
LOBBY_MESSAGES: tuple[type[Message], ...] = (
    Preauth,
    Join,
    Cancel,
    UpdateName,
    Admit,
    Deny,
    AdmitAll,
    DenyAll,
    RoomPause,
    RoomResume,
    RoomMute,
    RoomUnmute,
    Leave,
    ParticipantRemove,
    ParticipantToLobby,
    WaitingRoomMessage,
    EntryMessage,
)


# Parsing a frame ---------------------------------------------------------------------------

_MESSAGES: dict[str, type[Message]] = {}
_RID: TypeAdapter[str | int] = TypeAdapter(Rid, config=ConfigDict(strict=True))


def tag(model: type[Message]) -> str:
    """A message model's ``type``."""
    value = model.model_fields["type"].default
    assert isinstance(value, str), model
    return value


def register(*models: type[Message]) -> None:
    """Add socket messages to the union (breakouts do, at start-up). A type is registered once."""
    for model in models:
        kind = tag(model)
        if _MESSAGES.get(kind, model) is not model:
            raise ValueError(f"message type {kind} is registered twice")
        _MESSAGES[kind] = model
    _union.cache_clear()


def message_model(kind: str) -> type[Message]:
    """The model of a registered socket message type (``KeyError`` if none)."""
    return _MESSAGES[kind]


def message_types() -> frozenset[str]:
    """Every socket message type that :func:`parse_message` accepts."""
    return frozenset(_MESSAGES)


@functools.cache
def _union() -> TypeAdapter[Message]:
    members: Any = functools.reduce(operator.or_, _MESSAGES.values())
    union: Any = Annotated[members, Field(discriminator="type")]
    return TypeAdapter(union)


def decode_frame(text: str) -> dict[str, Any]:
    """The transport checks of one text frame: at most ``ANTEROOM_MAX_FRAME_BYTES``, strict JSON
    (no duplicate keys, NaN or Infinity), an object nested at most 16 deep, a string ``type``
    and a valid ``rid`` (a string of at most 64 characters, or an integer). Raises
    ``BadRequest``; once this returns, a refusal of the message can be acked with its ``rid``."""
    limit = settings.ANTEROOM_MAX_FRAME_BYTES
    if len(text) > limit or len(text.encode()) > limit:
        raise BadRequest("Frame too large (64 KiB at most).")
    try:
        msg = strict_json.loads(text)
    except strict_json.StrictJSONError as exc:
        raise BadRequest("Frames must be JSON objects without duplicate keys.") from exc
    if not isinstance(msg, dict):
        raise BadRequest("Frames must be JSON objects.")
    if strict_json.depth(msg, MAX_FRAME_DEPTH) > MAX_FRAME_DEPTH:
        raise BadRequest("Frame is nested too deeply.")
    if not isinstance(msg.get("type"), str):
        raise BadRequest("Frames need a string type.")
    if msg.get("rid") is not None:
        try:
            _RID.validate_python(msg["rid"])
        except ValidationError as exc:
            raise BadRequest("rid must be a short string or an integer.") from exc
    return msg


def parse_message(frame: dict[str, Any]) -> Message:
    """A decoded frame → its message model (one discriminated-union validation)."""
    kind = frame.get("type")
    model = _MESSAGES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise BadRequest("Unknown message type.")
    try:
        return _union().validate_python(frame)
    except ValidationError as exc:

        def refuse(error: ErrorDetails) -> AnteroomError:
            # The union puts the tag first in each location: the message's fields follow it.
            shifted: ErrorDetails = {**error, "loc": error["loc"][1:]}
            return model.refuse(shifted)

        raise refusal(exc, refuse) from exc


def parse_client_frame(text: str) -> Message:
    """:func:`decode_frame` then :func:`parse_message`."""
    return parse_message(decode_frame(text))


register(*LOBBY_MESSAGES)
