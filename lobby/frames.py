"""Every server→client frame of the core, one typed definition and one constructor each.

docs/protocol.md is the contract: each ``TypedDict`` below is a frame as documented there (its
``type`` a ``Literal``), and tests/lobby/test_frames.py checks every constructor against the
documented examples. Services, the consumer and the resync path build frames only here; the
representations inside them (``room_payload``, ``participant_payload``, ``request_payload``...)
are here too, and REST answers with the same ones. Breakout frames are breakouts' own
(``breakouts/events.py``), media frames media's (``lobby/media/frames.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

if TYPE_CHECKING:
    from datetime import datetime

    from .models import EntryRequest, Participant, Room

JSON = dict[str, Any]


def ts(value: datetime | None) -> str | None:
    """A time as the protocol writes it: ISO 8601, UTC as ``Z``."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


# Representations (inside frames, and the REST bodies) ----------------------------------------


def room_payload(room: Room) -> JSON:
    return {
        "name": room.name,
        "privacy": room.privacy,
        "mode": room.mode,
        "enable_knocking": room.enable_knocking,
        "max_active_talkers": room.max_active_talkers,
        "knock_ttl": room.knock_ttl,
        "max_participants": room.max_participants,
        "opens_at": ts(room.opens_at),
        "closes_at": ts(room.closes_at),
        "paused": room.paused,
        "audio_muted": room.audio_muted,
        "video_muted": room.video_muted,
        "created_at": ts(room.created_at),
    }


def participant_payload(p: Participant) -> JSON:
    return {
        "participant_id": p.participant_id,
        "name": p.name,
        "role": p.role,
        "status": p.status,
        "breakout_id": str(p.breakout_id) if p.breakout_id else None,
    }


def request_payload(r: EntryRequest) -> JSON:
    """The moderator's view of an entry request."""
    return {
        "id": str(r.id),
        "participant_id": r.participant_id,
        "name": r.name,
        "metadata": r.metadata,
        "requested_at": ts(r.requested_at),
        "expires_at": ts(r.expires_at),
        "status": r.status,
        "connected": r.disconnected_at is None,
    }


def request_full_payload(r: EntryRequest) -> JSON:
    """The REST view: adds the outcome fields."""
    return request_payload(r) | {
        "room": r.room.name,
        "cancel_reason": r.cancel_reason or None,
        "resolved_by": r.resolved_by or None,
        "resolved_at": ts(r.resolved_at),
    }


def guest_request_payload(r: EntryRequest) -> JSON:
    """The guest's own view of its knock: nothing about the room."""
    return {"id": str(r.id), "requested_at": ts(r.requested_at), "expires_at": ts(r.expires_at)}


# Acks and errors -----------------------------------------------------------------------------


class ErrorBody(TypedDict):
    code: str
    message: str


class ErrorFrame(TypedDict):
    type: Literal["error"]
    error: JSON  # ErrorBody, plus the error's own fields (retry_after, legacy_code, ...)


class AckFrame(TypedDict):
    type: Literal["ack"]
    rid: Any
    ok: bool
    data: NotRequired[JSON]
    error: NotRequired[JSON]


def error(code: str, message: str) -> ErrorFrame:
    return {"type": "error", "error": {"code": code, "message": message}}


def error_of(body: JSON) -> ErrorFrame:
    """An ``error`` frame for an error's full body (``AnteroomError.as_dict()``)."""
    return {"type": "error", "error": body}


def ack(rid: Any, data: JSON | None = None) -> AckFrame:
    return {"type": "ack", "rid": rid, "ok": True, "data": data or {}}


def ack_error(rid: Any, body: JSON) -> AckFrame:
    return {"type": "ack", "rid": rid, "ok": False, "error": body}


# Entering ------------------------------------------------------------------------------------


class AccessStateFrame(TypedDict):
    type: Literal["access-state"]
    level: str
    reason: NotRequired[str]


def access_state(level: str, reason: str | None = None) -> AccessStateFrame:
    frame: AccessStateFrame = {"type": "access-state", "level": level}
    if reason:
        frame["reason"] = reason
    return frame


class JoinedFrame(TypedDict):
    type: Literal["joined"]
    participant: JSON
    room: JSON
    participants: list[JSON]
    resume: str | None
    breakouts: list[JSON]
    media: NotRequired[Mapping[str, Any]]  # lobby.media.frames.MediaBody
    activity: NotRequired[list[Any]]
    resync: NotRequired[Literal[True]]


def joined(
    *,
    participant: Participant,
    room: Room | JSON,
    participants: list[JSON],
    resume: str | None,
    breakouts: list[JSON],
    media: Mapping[str, Any] | None = None,
    activity: list[Any] | None = None,
    resync: bool = False,
) -> JoinedFrame:
    """The snapshot a socket gets on entering (``resume``: its new key; ``None`` after an
    admission or a resync, when it keeps the one it holds). ``room`` and ``participants`` may be
    built once and shared by many frames (admit-all). ``media``, ``activity`` (moderators) and
    ``resync`` are added when given."""
    frame: JoinedFrame = {
        "type": "joined",
        "participant": participant_payload(participant),
        "room": room if isinstance(room, dict) else room_payload(room),
        "participants": participants,
        "resume": resume,
        "breakouts": breakouts,
    }
    if media is not None:
        frame["media"] = media
    if activity is not None:
        frame["activity"] = activity
    if resync:
        frame["resync"] = True
    return frame


# The waiting room ----------------------------------------------------------------------------


class WaitingFrame(TypedDict):
    type: Literal["waiting"]
    request: JSON
    resume: str | None
    reason: NotRequired[str]


def waiting(r: EntryRequest, *, resume: str | None, reason: str | None = None) -> WaitingFrame:
    frame: WaitingFrame = {"type": "waiting", "request": guest_request_payload(r), "resume": resume}
    if reason:
        frame["reason"] = reason
    return frame


class QueuePositionFrame(TypedDict):
    type: Literal["queue-position"]
    position: int
    waiting: int


def queue_position(position: int, waiting: int) -> QueuePositionFrame:
    return {"type": "queue-position", "position": position, "waiting": waiting}


class CanceledFrame(TypedDict):
    type: Literal["canceled"]
    reason: Literal["aborted"]


def canceled() -> CanceledFrame:
    """The guest's own ``cancel`` took effect (any other end of a knock is an ``error``)."""
    return {"type": "canceled", "reason": "aborted"}


class TextFrame(TypedDict):
    type: Literal["lobby-message", "host-message"]
    text: str


def lobby_message(text: str) -> TextFrame:
    return {"type": "lobby-message", "text": text}


def host_message(text: str) -> TextFrame:
    return {"type": "host-message", "text": text}


class DeadlineExtendedFrame(TypedDict):
    type: Literal["deadline-extended"]
    expires_at: str | None


def deadline_extended(expires_at: datetime | None) -> DeadlineExtendedFrame:
    return {"type": "deadline-extended", "expires_at": ts(expires_at)}


class RoomOpensFrame(TypedDict):
    type: Literal["room-opens"]
    opens_at: str | None


def room_opens(opens_at: datetime | None) -> RoomOpensFrame:
    return {"type": "room-opens", "opens_at": ts(opens_at)}


class WaitEstimateFrame(TypedDict):
    type: Literal["wait-estimate"]
    seconds_per_guest: int


def wait_estimate(seconds_per_guest: float) -> WaitEstimateFrame:
    return {"type": "wait-estimate", "seconds_per_guest": round(seconds_per_guest)}


# To moderators -------------------------------------------------------------------------------


class EntryRequestFrame(TypedDict):
    type: Literal["entry-requested", "entry-updated"]
    request: JSON


def entry_requested(r: EntryRequest) -> EntryRequestFrame:
    return {"type": "entry-requested", "request": request_payload(r)}


def entry_updated(r: EntryRequest) -> EntryRequestFrame:
    return {"type": "entry-updated", "request": request_payload(r)}


class EntryResolvedFrame(TypedDict):
    type: Literal["entry-resolved"]
    request_id: str
    outcome: str
    by: str


def entry_resolved(r: EntryRequest) -> EntryResolvedFrame:
    return {
        "type": "entry-resolved",
        "request_id": str(r.id),
        "outcome": r.status,
        "by": r.resolved_by,
    }


class EntryCanceledFrame(TypedDict):
    type: Literal["entry-canceled"]
    request_id: str
    reason: str


def entry_canceled(r: EntryRequest) -> EntryCanceledFrame:
    return {"type": "entry-canceled", "request_id": str(r.id), "reason": r.cancel_reason}


class KnockAlertFrame(TypedDict):
    type: Literal["knock-alert"]
    count: int
    waiting: int


def knock_alert(count: int, waiting: int) -> KnockAlertFrame:
    """``count`` knocks since the last alert, ``waiting`` pending now."""
    return {"type": "knock-alert", "count": count, "waiting": waiting}


class ActivityFrame(TypedDict):
    type: Literal["activity"]
    items: list[Any]


def activity(items: list[Any]) -> ActivityFrame:
    return {"type": "activity", "items": items}


# To room members -----------------------------------------------------------------------------

ParticipantEvent = Literal["participant-joined", "participant-updated", "participant-left"]


class ParticipantFrame(TypedDict):
    type: ParticipantEvent
    participant: JSON


def participant_event(kind: ParticipantEvent, p: Participant) -> ParticipantFrame:
    return {"type": kind, "participant": participant_payload(p)}


class RoomUpdatedFrame(TypedDict):
    type: Literal["room-updated"]
    room: JSON


def room_updated(room: Room) -> RoomUpdatedFrame:
    return {"type": "room-updated", "room": room_payload(room)}


# Every constructor, by the frame type it builds (tests/lobby/test_frames.py).
CONSTRUCTORS: dict[str, str] = {
    "error": "error",
    "ack": "ack",
    "access-state": "access_state",
    "joined": "joined",
    "waiting": "waiting",
    "queue-position": "queue_position",
    "canceled": "canceled",
    "lobby-message": "lobby_message",
    "host-message": "host_message",
    "deadline-extended": "deadline_extended",
    "room-opens": "room_opens",
    "wait-estimate": "wait_estimate",
    "entry-requested": "entry_requested",
    "entry-updated": "entry_updated",
    "entry-resolved": "entry_resolved",
    "entry-canceled": "entry_canceled",
    "knock-alert": "knock_alert",
    "activity": "activity",
    "participant-joined": "participant_event",
    "participant-updated": "participant_event",
    "participant-left": "participant_event",
    "room-updated": "room_updated",
}
