"""Inviting participants into a breakout room (or moving them in at once) and declining an
invitation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from lobby import clock
from lobby.audit import audit_record
from lobby.errors import BadRequest, BreakoutFull, NotFound, NotInvited
from lobby.models import Participant, Room
from lobby.services import Actor, require_moderator

from .. import events
from ..events import Outbox
from ..models import BreakoutInvitation
from ..selectors import breakout_members, breakout_room_payload
from .inputs import clean_bool, clean_participant_ids
from .locks import breakout_in, lock_parent, places_left, present
from .moves import enter
from .notices import invitations_changed, rooms_updated

Invitation = BreakoutInvitation.Status


@dataclass(frozen=True)
class Invited:
    room: Room
    clients: list[str]  # who was invited or moved (members of the room already are skipped)
    force_join: bool


@transaction.atomic
def breakout_invite(
    *, parent: Room, actor: Actor, room_id: Any, clients: Any, force_join: bool = False
) -> Invited:
    """Invite present participants of the parent into one breakout room.

    Without ``force_join`` each invitee gets ``breakout-invitation`` and must ``breakout-join``
    or ``breakout-reject`` (capacity is enforced when they join). With ``force_join`` they are
    moved now (out of another breakout if need be): all of them must fit (``BreakoutFull``,
    nothing applied), they get ``breakout-joined``, the room's members hear
    ``breakout-participant-joined`` and the parent's members ``participant-updated``.
    Moderators get ``breakout-invited`` and ``breakouts-updated``.

    Locks the parent and the invitees' rows. Raises ``BreakoutLectureMode``,
    ``InvalidPermissions``, ``BadRequest``, ``BreakoutNotFound``, ``NotFound`` (an id that is
    not present in the room: nobody is invited), ``BreakoutFull``.
    """
    parent = lock_parent(parent)
    require_moderator(actor)
    ids = clean_participant_ids(clients)
    force_join = clean_bool(force_join, "force_join")
    room = breakout_in(parent, room_id)
    people = _invitees(parent, room, ids)
    out = Outbox()
    if force_join:
        _move_in_now(parent, room, people, by=actor.by, out=out)
    else:
        _invite(parent, room, people, by=actor.by, out=out)
    invited = _ids(people)
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-invite",
        data={"room": room.number, "clients": invited, "force_join": force_join},
    )
    return Invited(room=room, clients=invited, force_join=force_join)


def _invitees(parent: Room, room: Room, ids: list[str]) -> list[Participant]:
    """The present participants ``ids`` (locked), in that order, less those already in ``room``.
    Raises ``NotFound`` if one is not present: then nobody is invited."""
    found = {p.participant_id: p for p in present(parent).filter(participant_id__in=ids)}
    if len(found) != len(ids):
        raise NotFound("A participant in clients is not in the room.")
    return [found[i] for i in ids if found[i].breakout_id != room.pk]


def _move_in_now(
    parent: Room, room: Room, people: list[Participant], *, by: str, out: Outbox
) -> None:
    """``force_join``: all of ``people`` fit or nobody moves (``BreakoutFull``); each is in by an
    accepted invitation, moves in, and moderators hear who (and the rooms as they now are)."""
    if len(people) > places_left(room):
        raise BreakoutFull()
    now = clock.now()
    for p in people:
        accept_invitation(room, p.participant_id, by, now, force_join=True)
    enter(parent=parent, room=room, people=people, out=out)
    if people:
        out.to_mods(parent.pk, events.breakout_invited(room.pk, _ids(people), by))
        rooms_updated(parent, out)


def _invite(parent: Room, room: Room, people: list[Participant], *, by: str, out: Outbox) -> None:
    """A pending invitation for each of ``people`` (one already pending is kept), each told
    ``breakout-invitation``; moderators hear who (and the invitations as they now are)."""
    now = clock.now()
    payload = breakout_room_payload(room, breakout_members(room=room))
    for p in people:
        pending = BreakoutInvitation.objects.filter(
            breakout=room, participant_id=p.participant_id, status=Invitation.PENDING
        ).exists()
        if not pending:
            BreakoutInvitation.objects.create(
                breakout=room, participant_id=p.participant_id, invited_by=by, created_at=now
            )
        out.to_participant(parent.pk, p.participant_id, events.breakout_invitation(payload, by))
    if people:
        out.to_mods(parent.pk, events.breakout_invited(room.pk, _ids(people), by))
        invitations_changed(parent, out)


def _ids(people: list[Participant]) -> list[str]:
    return [p.participant_id for p in people]


def accept_pending(room: Room, participant_id: str) -> None:
    """A moderator who enters ``room`` needs no invitation: one pending is accepted, none is
    written."""
    BreakoutInvitation.objects.filter(
        breakout=room, participant_id=participant_id, status=Invitation.PENDING
    ).update(status=Invitation.ACCEPTED)


def accept_invitation(
    room: Room, participant_id: str, by: str, now: datetime, *, force_join: bool
) -> None:
    """Record that someone is in ``room`` by invitation: the pending one is accepted, or an
    accepted one is written (a moderator's move). It lets them rejoin after clear-all."""
    updated = BreakoutInvitation.objects.filter(
        breakout=room, participant_id=participant_id, status=Invitation.PENDING
    ).update(status=Invitation.ACCEPTED, force_join=force_join)
    if not updated and not (
        BreakoutInvitation.objects.filter(
            breakout=room, participant_id=participant_id, status=Invitation.ACCEPTED
        ).exists()
    ):
        BreakoutInvitation.objects.create(
            breakout=room,
            participant_id=participant_id,
            invited_by=by,
            force_join=force_join,
            status=Invitation.ACCEPTED,
            created_at=now,
        )


@transaction.atomic
def breakout_reject(*, parent: Room, participant_id: str, room_id: Any) -> BreakoutInvitation:
    """Decline a pending invitation. Emits ``breakout-invite-rejected`` to moderators.

    Locks the parent. Raises ``BreakoutLectureMode``, ``BadRequest``, ``BreakoutNotFound``,
    ``NotInvited`` (no pending invitation to that room)."""
    parent = lock_parent(parent)
    room = breakout_in(parent, room_id)
    if not isinstance(participant_id, str):
        raise BadRequest("participant_id must be a string.")
    inv = BreakoutInvitation.objects.filter(
        breakout=room, participant_id=participant_id, status=Invitation.PENDING
    ).first()
    if inv is None:
        raise NotInvited()
    BreakoutInvitation.objects.filter(pk=inv.pk).update(status=Invitation.REJECTED)
    inv.status = Invitation.REJECTED
    out = Outbox()
    out.to_mods(parent.pk, events.breakout_invite_rejected(room.pk, participant_id))
    invitations_changed(parent, out)
    out.flush()
    audit_record(
        room=parent, actor=participant_id, action="breakout-reject", data={"room": room.number}
    )
    return inv
