"""Who is in which breakout: join, leave, a moderator's move, and the lobby's hook for a
participant it took out of its breakout."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from lobby import clock
from lobby.audit import audit_record
from lobby.errors import (
    AlreadyInBreakout,
    BadRequest,
    BreakoutFull,
    InvalidPermissions,
    NotInBreakout,
    NotInvited,
)
from lobby.models import Participant, Role, Room
from lobby.services import Actor, require_moderator

from .. import events
from ..events import Outbox
from ..models import BreakoutInvitation
from .help_outcomes import clear_help
from .invitations import accept_invitation, accept_pending
from .locks import breakout_in, lock_parent, places_left, present_participant
from .moves import enter, return_to_parent
from .notices import rooms_updated

Invitation = BreakoutInvitation.Status


ROLES = set(Role.values)


@transaction.atomic
def breakout_join(*, parent: Room, participant_id: str, room_id: Any, role: Any = None) -> Room:
    """A participant of the parent enters a breakout room.

    Non-moderators need an invitation to that room (pending, or accepted earlier: after a
    leave or clear-all they may go back); moderators may visit any room. Everyone counts
    towards capacity. ``role`` (optional) is checked against the participant's own role: a
    breakout role is the parent role. Joining the room one is already in is a no-op.

    Locks the parent (so concurrent joins into a nearly full room cannot exceed capacity) and
    the participant's row. Emits ``breakout-joined`` to the joiner (its socket joins the room's
    group), ``breakout-participant-joined`` to the room's members, ``participant-updated`` to the
    parent's members and ``breakouts-updated`` to moderators.

    Raises ``BreakoutLectureMode``, ``BadRequest``, ``BreakoutNotFound``, ``NotFound``,
    ``AlreadyInBreakout`` (in another breakout), ``InvalidPermissions`` (asking for a role one
    does not have), ``NotInvited``, ``BreakoutFull``.
    """
    parent = lock_parent(parent)
    room = breakout_in(parent, room_id)
    p = present_participant(parent, participant_id)
    _check_role(p, role)
    if p.breakout_id == room.pk:
        return room
    if p.breakout_id is not None:
        raise AlreadyInBreakout()
    _check_may_enter(p, room)
    if p.role == Role.MODERATOR:
        accept_pending(room, p.participant_id)
    else:
        accept_invitation(room, p.participant_id, p.participant_id, clock.now(), force_join=False)
    out = Outbox()
    enter(parent=parent, room=room, people=[p], out=out)
    rooms_updated(parent, out)
    out.flush()
    audit_record(
        room=parent, actor=p.participant_id, action="breakout-join", data={"room": room.number}
    )
    return room


def _check_role(p: Participant, role: Any) -> None:
    """``breakout-join``'s optional ``role`` is the participant's own: a breakout role is the
    parent role. Raises ``BadRequest``, ``InvalidPermissions`` (moderator, when not one)."""
    if role is None:
        return
    if not isinstance(role, str) or role not in ROLES:
        raise BadRequest("role must be moderator, participant or viewer.")
    if role == Role.MODERATOR and p.role != Role.MODERATOR:
        raise InvalidPermissions("Only moderators may join as moderator.")


def _check_may_enter(p: Participant, room: Room) -> None:
    """Moderators may visit any room; anyone else needs an invitation to it (pending, or
    accepted earlier). Everyone needs a free place. Raises ``NotInvited``, ``BreakoutFull``."""
    if (
        p.role != Role.MODERATOR
        and not BreakoutInvitation.objects.filter(
            breakout=room,
            participant_id=p.participant_id,
            status__in=[Invitation.PENDING, Invitation.ACCEPTED],
        ).exists()
    ):
        raise NotInvited()
    if places_left(room) < 1:
        raise BreakoutFull()


@transaction.atomic
def breakout_leave(*, parent: Room, participant_id: str) -> uuid.UUID:
    """Leave one's breakout: back in the parent, ``active`` again. Returns the room's id.

    Locks the parent and the participant's row. Emits ``breakout-left`` (reason ``left``) to
    the participant (its socket leaves the room's group), ``breakout-participant-left`` to those
    who stay, ``participant-updated`` to the parent's members, ``breakouts-updated`` to
    moderators. Raises ``BreakoutLectureMode``, ``NotFound``, ``NotInBreakout``."""
    parent = lock_parent(parent)
    p = present_participant(parent, participant_id)
    old = p.breakout_id
    if old is None:
        raise NotInBreakout()
    out = Outbox()
    return_to_parent(parent=parent, people=[p], reason="left", out=out)
    rooms_updated(parent, out)
    out.flush()
    audit_record(room=parent, actor=participant_id, action="breakout-leave", data={})
    return old


@transaction.atomic
def breakout_move(*, parent: Room, actor: Actor, participant_id: Any, room_id: Any) -> Participant:
    """A moderator moves a participant into a breakout room, or back to the parent
    (``room_id`` None). Capacity is respected (``BreakoutFull``). Moving someone into the room
    they are in is a no-op.

    Locks the parent and the participant's row. The participant gets ``breakout-left``
    (reason ``moved``) and/or ``breakout-joined``; the rooms' members, the parent's members and
    moderators hear as for leave and join. Raises ``BreakoutLectureMode``,
    ``InvalidPermissions``, ``BadRequest``, ``NotFound``, ``BreakoutNotFound``,
    ``NotInBreakout`` (back to the parent when not in a breakout), ``BreakoutFull``."""
    parent = lock_parent(parent)
    require_moderator(actor)
    p = present_participant(parent, participant_id)
    out = Outbox()
    if room_id is None:
        if p.breakout_id is None:
            raise NotInBreakout()
        return_to_parent(parent=parent, people=[p], reason="moved", out=out)
        target = None
    else:
        room = breakout_in(parent, room_id)
        target = room.number
        if p.breakout_id == room.pk:
            return p
        if places_left(room) < 1:
            raise BreakoutFull()
        accept_invitation(room, p.participant_id, actor.by, clock.now(), force_join=True)
        enter(parent=parent, room=room, people=[p], out=out)
    rooms_updated(parent, out)
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-move",
        subject=p.participant_id,
        data={"room": target},
    )
    return p


def breakout_memberships_close(*, participant: Participant, breakout_id: Any) -> None:
    """The lobby took a participant out of its breakout (it left the whole room, or rejoined
    from a new connection without its resume key): tell the breakout's remaining members and
    the moderators. Runs inside the lobby's transaction; the row is already updated."""
    out = Outbox()
    out.to_members(
        breakout_id,
        events.breakout_participant("left", participant),
        except_participant=participant.participant_id,
    )
    clear_help(participant.room_id, [participant.participant_id], out)
    parent = Room.objects.filter(pk=participant.room_id).first()
    if parent is not None:
        rooms_updated(parent, out)
    out.flush()
