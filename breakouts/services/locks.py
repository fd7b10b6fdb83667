"""The parent lock every breakout change takes first, and the rows read under it: the breakout
rooms of a parent, its present participants, the places left in a room."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from lobby.errors import (
    BadRequest,
    BreakoutFromBreakout,
    BreakoutLectureMode,
    BreakoutNotFound,
    NotFound,
    RoomNotFound,
)
from lobby.models import Participant, Room

from .inputs import clean_room_id

LEFT = Participant.Status.LEFT


def lock_parent(parent: Room) -> Room:
    """Lock the parent's row and re-read it; enforce "from a group-mode parent only"."""
    room = Room.objects.select_for_update().filter(pk=parent.pk).first()
    if room is None:
        raise RoomNotFound()
    if room.parent_id is not None:
        raise BreakoutFromBreakout()
    if room.mode == Room.Mode.LECTURE:
        raise BreakoutLectureMode()
    return room


def breakout_in(parent: Room, room_id: Any) -> Room:
    rid = clean_room_id(room_id)
    room = Room.objects.filter(pk=rid, parent=parent).first()
    if room is None:
        raise BreakoutNotFound()
    return room


def present(parent: Room) -> QuerySet[Participant]:
    return Participant.objects.select_for_update().filter(room=parent).exclude(status=LEFT)


def present_participant(parent: Room, participant_id: Any) -> Participant:
    if not isinstance(participant_id, str) or not participant_id:
        raise BadRequest("participant_id must be a string.")
    p = present(parent).filter(participant_id=participant_id).first()
    if p is None:
        raise NotFound(gettext_noop("No such participant in this room."))
    return p


def _member_count(room: Room) -> int:
    return Participant.objects.filter(breakout=room).exclude(status=LEFT).count()


def places_left(room: Room) -> int:
    """Free places in a breakout room (the caller holds the parent's lock)."""
    if room.capacity is None:  # only top-level rooms have none
        raise BreakoutNotFound()
    return room.capacity - _member_count(room)
