"""Rooms: create, update, delete, pause/mute, and the room lookup every surface uses."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists

from .. import cache, clock, events, frames, media, tokens, webhooks
from ..audit import audit_record
from ..errors import BadRequest, BreakoutLectureMode, RoomExists, RoomNotFound
from ..instructions import Close
from ..models import MAX_PARTICIPANTS, ROOM_NAME_RE, Room
from . import appointments
from .actors import Actor, require_moderator

ROOM_FIELDS = (
    "privacy",
    "enable_knocking",
    "mode",
    "max_active_talkers",
    "knock_ttl",
    "max_participants",
    *appointments.FIELDS,
)


def _audit_data(fields: dict[str, Any]) -> dict[str, Any]:
    """The properties as an audit row stores them (JSON: times as ISO 8601)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}


def _check_room_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(ROOM_FIELDS)
    if unknown:
        raise BadRequest(f"Unknown room properties: {', '.join(sorted(unknown))}.")
    if "privacy" in fields and fields["privacy"] not in Room.Privacy.values:
        raise BadRequest('privacy must be "public" or "private".')
    if "mode" in fields and fields["mode"] not in Room.Mode.values:
        raise BadRequest('mode must be "group" or "lecture".')
    if "enable_knocking" in fields and type(fields["enable_knocking"]) is not bool:
        raise BadRequest("enable_knocking must be a boolean.")
    appointments.check_fields(fields)
    cap = fields.get("max_participants")
    if cap is not None and (type(cap) is not int or not 1 <= cap <= MAX_PARTICIPANTS):
        raise BadRequest(f"max_participants must be null or from 1 to {MAX_PARTICIPANTS}.")
    for key, lo, hi in (("max_active_talkers", 3, 50), ("knock_ttl", 10, 600)):
        if key in fields:
            v = fields[key]
            if type(v) is not int or not lo <= v <= hi:
                raise BadRequest(f"{key} must be an integer from {lo} to {hi}.")


@transaction.atomic
def room_create(*, actor: Actor, name: str | None = None, **fields: Any) -> Room:
    """Create a top-level room (moderators: API keys, staff, management commands).

    Writes a ``room-create`` audit row with the properties given. Raises
    ``InvalidPermissions``, ``BadRequest`` or ``RoomExists``.
    """
    require_moderator(actor)
    if name is None:
        name = secrets.token_urlsafe(9).replace("_", "x").replace("-", "y")
    if not isinstance(name, str) or not re.fullmatch(ROOM_NAME_RE, name):
        raise BadRequest("name must be 1-64 characters of A-Z, a-z, 0-9, _ and -.")
    _check_room_fields(fields)
    appointments.check_window(None, fields)
    if Room.objects.filter(name=name, parent__isnull=True).exists():
        raise RoomExists()
    try:
        with transaction.atomic():
            room = Room.objects.create(name=name, **fields)
    except IntegrityError as exc:
        raise RoomExists() from exc
    audit_record(room=room, actor=actor.by, action="room-create", data=_audit_data(fields))
    return room


@transaction.atomic
def room_update(*, room: Room, actor: Actor, **fields: Any) -> Room:
    """Change a room's properties (moderators only). Locks the room row; members hear
    ``room-updated``; a ``room-update`` audit row records the changed values.

    Raises ``InvalidPermissions``, ``BadRequest``, ``BreakoutLectureMode``.
    """
    require_moderator(actor)
    _check_room_fields(fields)
    room = Room.objects.select_for_update().get(pk=room.pk)
    if fields.get("mode") == Room.Mode.LECTURE and room.breakouts.exists():
        # Breakouts exist only in group mode; nobody may be stranded in one (SPEC §2).
        raise BreakoutLectureMode("Destroy the breakout rooms before switching to lecture mode.")
    window = appointments.check_window(room, fields)
    for key, value in fields.items():
        setattr(room, key, value)
    room.save(update_fields=list(fields))
    appointments.window_changed(room, window, now=clock.now())
    _room_updated(room)
    audit_record(room=room, actor=actor.by, action="room-update", data=_audit_data(fields))
    return room


@transaction.atomic
def room_delete(*, room: Room, actor: Actor) -> None:
    """Delete a room (moderators only); connected members and waiting guests are disconnected
    (``ROOM_NOT_FOUND``, 4404). A ``room-delete`` audit row outlives the room (it keeps the
    room's name; its room link is cleared). Raises ``InvalidPermissions``."""
    require_moderator(actor)
    audit_record(room=room, actor=actor.by, action="room-delete")
    gone = Close.for_error(RoomNotFound("The room was deleted."))
    events.send_on_commit(events.members_group(room.pk), gone)
    events.send_on_commit(events.lobby_group(room.pk), gone)
    media.changed(
        room.pk, closed=[room.pk, *Room.objects.filter(parent=room).values_list("pk", flat=True)]
    )
    room.delete()


def _room_updated(room: Room) -> None:
    events.deliver_on_commit(events.members_group(room.pk), frames.room_updated(room))
    webhooks.emit("room.updated", room=room, data={"room": events.room_payload(room)})


@transaction.atomic
def room_set_state(
    *,
    room: Room,
    actor: Actor,
    paused: bool | None = None,
    audio_muted: bool | None = None,
    video_muted: bool | None = None,
) -> Room:
    """Pause/resume or mute/unmute a room (moderators only). Emits ``room-updated``.

    Mute and pause are state and permissions: media servers and clients apply them.
    """
    require_moderator(actor)
    room = Room.objects.select_for_update().get(pk=room.pk)
    changed = []
    for key, value in (
        ("paused", paused),
        ("audio_muted", audio_muted),
        ("video_muted", video_muted),
    ):
        if value is not None and getattr(room, key) != value:
            setattr(room, key, value)
            changed.append(key)
    if changed:
        room.save(update_fields=changed)
        _room_updated(room)
        media.changed(room.pk, everyone=True)
        audit_record(
            room=room,
            actor=actor.by,
            action="room-state",
            data={k: getattr(room, k) for k in changed},
        )
    return room


def get_room(name: str) -> Room:
    """The top-level room ``name`` (from ``lobby.cache`` on the embedded default)."""
    return get_room_and_revocation(name, None)[0]


def get_room_and_revocation(name: str, jti: str | None) -> tuple[Room, bool]:
    """``get_room(name)`` and, for a ``jti``, ``tokens.is_revoked(jti)`` (False without one):
    **one** statement when neither answer is cached — the room with an ``EXISTS`` on the
    revocation table — instead of two round trips (a connect's ``preauth`` and a ``join``).
    Raises ``RoomNotFound`` (whatever the token)."""
    revoked: bool | None = cache.is_revoked(jti) if jti is not None else False
    room = cache.get_room(name)
    if room is not None:
        if revoked is None:
            revoked = tokens.is_revoked(str(jti))
        return room, revoked
    rooms = Room.objects.filter(name=name, parent__isnull=True)
    if revoked is None:
        rooms = rooms.annotate(anteroom_revoked=Exists(tokens.revoked_tokens(str(jti))))
    try:
        room = rooms.get()
    except Room.DoesNotExist as exc:
        raise RoomNotFound() from exc
    if revoked is None:
        revoked = bool(room.__dict__.pop("anteroom_revoked"))
        cache.put_revoked(str(jti), revoked)
    cache.put_room(room)
    return room, revoked
