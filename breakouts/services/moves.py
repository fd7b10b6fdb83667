"""Moving locked, present participants into a breakout room or back to the parent, and who is
told of each move (shared by every service that moves people)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from lobby import media
from lobby.models import Participant, Room

from .. import events
from ..events import LeftReason, Outbox
from ..selectors import breakout_members, breakout_room_payload
from .help_outcomes import clear_help

PAUSED = Participant.Status.PAUSED
ACTIVE = Participant.Status.ACTIVE
LEFT = Participant.Status.LEFT


def fill(
    *, parent: Room, room: Room, people: Sequence[Participant], out: Outbox
) -> list[Participant]:
    """Put locked, present participants into ``room`` (paused in the parent), telling only
    them and the parent's members: for rooms filled in one go, whose members all arrive now.
    The caller has checked capacity. Anyone in another breakout is moved out of it first
    (reason ``moved``). Returns who moved."""
    moving = [p for p in people if p.breakout_id != room.pk]
    if not moving:
        return []
    origins = {p.pk: p.breakout_id for p in moving}
    Participant.objects.filter(pk__in=list(origins)).update(breakout=room, status=PAUSED)
    # Moved out of another breakout room: a help request from there is over.
    clear_help(parent.pk, [p.participant_id for p in moving if origins[p.pk]], out)
    media.changed(
        parent.pk,
        participants=[p.participant_id for p in moving],
        revoked=[(p.participant_id, origins[p.pk] or parent.pk) for p in moving],
    )
    for p in moving:
        p.breakout, p.status = room, PAUSED
    payload = breakout_room_payload(room, breakout_members(room=room))
    for p in moving:
        old = origins[p.pk]
        if old is not None:
            out.move(
                parent.pk,
                p.participant_id,
                events.breakout_left(old, "moved"),
                to=None,
                discard=[old],
            )
            out.to_members(old, events.breakout_participant("left", p))
        out.move(
            parent.pk, p.participant_id, events.breakout_joined(payload), to=room.pk, add=[room.pk]
        )
    out.to_members(parent.pk, *[events.participant_updated(p) for p in moving])
    return moving


def enter(
    *, parent: Room, room: Room, people: Sequence[Participant], out: Outbox
) -> list[Participant]:
    """``fill``, and the room's members hear ``breakout-participant-joined`` of each."""
    moved = fill(parent=parent, room=room, people=people, out=out)
    for p in moved:
        out.to_members(
            room.pk, events.breakout_participant("joined", p), except_participant=p.participant_id
        )
    return moved


def _move_back(
    *, parent: Room, people: Iterable[Participant], reason: LeftReason, out: Outbox
) -> list[tuple[Participant, uuid.UUID]]:
    """Return locked participants from their breakout to the parent (``active`` again),
    telling them (``breakout-left`` with ``reason``) and the parent's members. Returns who
    moved, each with the breakout it left."""
    back = [(p, p.breakout_id) for p in people if p.breakout_id is not None and p.status != LEFT]
    if not back:
        return []
    Participant.objects.filter(pk__in=[p.pk for p, _ in back]).update(breakout=None, status=ACTIVE)
    clear_help(parent.pk, [p.participant_id for p, _ in back], out)
    media.changed(
        parent.pk,
        participants=[p.participant_id for p, _ in back],
        revoked=[(p.participant_id, old) for p, old in back],
    )
    for p, old in back:
        p.breakout, p.status = None, ACTIVE
        out.move(
            parent.pk, p.participant_id, events.breakout_left(old, reason), to=None, discard=[old]
        )
    out.to_members(parent.pk, *[events.participant_updated(p) for p, _ in back])
    return back


def empty(
    *, parent: Room, people: Iterable[Participant], reason: LeftReason, out: Outbox
) -> list[Participant]:
    """``_move_back`` for whole rooms emptied at once (clear-all, destroy-all, a timer): nobody
    stays behind to be told."""
    return [p for p, _ in _move_back(parent=parent, people=people, reason=reason, out=out)]


def return_to_parent(
    *, parent: Room, people: Iterable[Participant], reason: LeftReason, out: Outbox
) -> list[Participant]:
    """``_move_back``, and the members who stay behind hear ``breakout-participant-left``."""
    back = _move_back(parent=parent, people=people, reason=reason, out=out)
    for p, old in back:
        out.to_members(
            old, events.breakout_participant("left", p), except_participant=p.participant_id
        )
    return [p for p, _ in back]
