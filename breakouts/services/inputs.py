"""What the breakout services accept: the limits, and type checks of socket and JSON arguments
(``BadRequest``), with ``breakout-create``'s room options."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Required, TypedDict

from lobby.errors import BadRequest, BreakoutInvalidSize, BreakoutLimit, BreakoutNotFound
from lobby.models import Room

MAX_BREAKOUTS = 10


MIN_CAPACITY = 2


MIN_DURATION, MAX_DURATION = 60, 14_400


MAX_CLIENTS = 1000


def clean_int(value: Any, name: str) -> int:
    if type(value) is not int:
        raise BadRequest(f"{name} must be an integer.")
    return value


def clean_bool(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise BadRequest(f"{name} must be a boolean.")
    return value


def clean_duration(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not MIN_DURATION <= value <= MAX_DURATION:
        raise BadRequest(f"duration must be an integer from {MIN_DURATION} to {MAX_DURATION}.")
    return value


def clean_participant_ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise BadRequest("clients must be a list of participant ids.")
    if not value or len(value) > MAX_CLIENTS:
        raise BadRequest(f"clients must list 1 to {MAX_CLIENTS} participants.")
    return list(dict.fromkeys(value))


def clean_room_id(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise BadRequest("room_id must be a string.")
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise BreakoutNotFound() from exc


@dataclass(frozen=True)
class RoomOptions:
    capacity: int
    audio: bool
    video: bool
    canvas: bool
    share: bool
    max_rooms: int
    duration: int | None


class BreakoutOptions(TypedDict, total=False):
    """The keyword arguments both breakout creators take (``breakout-create``'s fields); a flag
    left out takes its default in ``FLAG_DEFAULTS``, ``duration`` none (no timer)."""

    participants: Required[int]
    max_rooms: Required[int]
    audio: bool
    video: bool
    canvas: bool
    share: bool
    duration: int | None


FLAG_DEFAULTS = {"audio": True, "video": True, "canvas": False, "share": False}


def clean_room_options(parent: Room, raw: BreakoutOptions) -> RoomOptions:
    """Check ``breakout-create``'s fields. Capacity is 2 … parent ``max_active_talkers`` - 1."""
    capacity = clean_int(raw["participants"], "participants")
    given: dict[str, Any] = dict(raw)
    flags = {k: clean_bool(given.get(k, d), k) for k, d in FLAG_DEFAULTS.items()}
    max_rooms = clean_int(raw["max_rooms"], "max_rooms")
    duration = clean_duration(raw.get("duration"))
    if max_rooms < 1:
        raise BadRequest("max_rooms must be at least 1.")
    top = parent.max_active_talkers - 1
    if not MIN_CAPACITY <= capacity <= top:
        raise BreakoutInvalidSize(
            f"participants must be from {MIN_CAPACITY} to {top} (the room's max_active_talkers"
            " minus one)."
        )
    if max_rooms > MAX_BREAKOUTS:
        raise BreakoutLimit()
    return RoomOptions(capacity=capacity, max_rooms=max_rooms, duration=duration, **flags)
