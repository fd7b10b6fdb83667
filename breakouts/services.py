"""Breakout services (SPEC §2): every change of breakout rooms and membership is one function.

Each runs in one transaction that first locks the parent room's row (``select_for_update``), so
every breakout change of one parent is serialised: the 10-room limit, capacities and "one
breakout at a time" are checked and written under that lock (on SQLite the IMMEDIATE
transaction mode takes the database write lock at BEGIN, which serialises the same way). The
participant rows involved are locked too, so a concurrent ``participant-left`` (which does not
take the parent lock) cannot interleave. Events are collected in an :class:`Outbox` and sent
only after the commit.

Membership is ``Participant.breakout`` (one breakout at a time is structural) with
``Participant.status == "paused"`` in the parent while there; every write keeps
``paused ⇔ breakout is set`` for present participants.

Arguments arrive from sockets and JSON bodies, so each service checks the types of what it is
given (``BadRequest``) besides the rules.
"""

from __future__ import annotations

import math
import random
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from lobby import clock, media, webhooks
from lobby import frames as lobby_frames
from lobby.audit import audit_record
from lobby.errors import (
    AlreadyInBreakout,
    BadRequest,
    BreakoutFromBreakout,
    BreakoutFull,
    BreakoutInvalidSize,
    BreakoutLectureMode,
    BreakoutLimit,
    BreakoutNotFound,
    HelpAlreadyRequested,
    HelpRequestNotFound,
    InvalidPermissions,
    NotFound,
    NotInBreakout,
    NotInvited,
    RoomNotFound,
)
from lobby.models import Participant, Role, Room
from lobby.services import Actor, require_moderator

from . import events
from .events import LeftReason, Outbox
from .models import BreakoutInvitation, HelpRequest
from .selectors import breakout_members, breakout_room_payload, breakout_rooms_payload

MAX_BREAKOUTS = 10
MIN_CAPACITY = 2
MIN_DURATION, MAX_DURATION = 60, 14_400
MAX_EXTEND = 14_400
ENDING_WARNING = 60  # seconds before ``ends_at`` that members hear ``breakout-ending``
MAX_BROADCAST = 1000
MAX_CLIENTS = 1000

_rng: random.Random = secrets.SystemRandom()

Invitation = BreakoutInvitation.Status
HelpStatus = HelpRequest.Status
PAUSED, ACTIVE, LEFT = (
    Participant.Status.PAUSED,
    Participant.Status.ACTIVE,
    Participant.Status.LEFT,
)


# Input checks ------------------------------------------------------------------------------


def _int(value: Any, name: str) -> int:
    if type(value) is not int:
        raise BadRequest(f"{name} must be an integer.")
    return value


def _bool(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise BadRequest(f"{name} must be a boolean.")
    return value


def _duration(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not MIN_DURATION <= value <= MAX_DURATION:
        raise BadRequest(f"duration must be an integer from {MIN_DURATION} to {MAX_DURATION}.")
    return value


def _participant_ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise BadRequest("clients must be a list of participant ids.")
    if not value or len(value) > MAX_CLIENTS:
        raise BadRequest(f"clients must list 1 to {MAX_CLIENTS} participants.")
    return list(dict.fromkeys(value))


def _room_uuid(value: Any) -> uuid.UUID:
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


def _room_options(parent: Room, **raw: Any) -> RoomOptions:
    """Check ``breakout-create``'s fields. Capacity is 2 … parent ``max_active_talkers`` - 1."""
    capacity = _int(raw["participants"], "participants")
    flags = {k: _bool(raw[k], k) for k in ("audio", "video", "canvas", "share")}
    max_rooms = _int(raw["max_rooms"], "max_rooms")
    duration = _duration(raw["duration"])
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


# Locks and reads ---------------------------------------------------------------------------


def _lock_parent(parent: Room) -> Room:
    """Lock the parent's row and re-read it; enforce "from a group-mode parent only"."""
    room = Room.objects.select_for_update().filter(pk=parent.pk).first()
    if room is None:
        raise RoomNotFound()
    if room.parent_id is not None:
        raise BreakoutFromBreakout()
    if room.mode == Room.Mode.LECTURE:
        raise BreakoutLectureMode()
    return room


def _breakout(parent: Room, room_id: Any) -> Room:
    rid = _room_uuid(room_id)
    room = Room.objects.filter(pk=rid, parent=parent).first()
    if room is None:
        raise BreakoutNotFound()
    return room


def _present(parent: Room) -> QuerySet[Participant]:
    return Participant.objects.select_for_update().filter(room=parent).exclude(status=LEFT)


def _participant(parent: Room, participant_id: Any) -> Participant:
    if not isinstance(participant_id, str) or not participant_id:
        raise BadRequest("participant_id must be a string.")
    p = _present(parent).filter(participant_id=participant_id).first()
    if p is None:
        raise NotFound(gettext_noop("No such participant in this room."))
    return p


def _member_count(room: Room) -> int:
    return Participant.objects.filter(breakout=room).exclude(status=LEFT).count()


def _places_left(room: Room) -> int:
    """Free places in a breakout room (the caller holds the parent's lock)."""
    if room.capacity is None:  # only top-level rooms have none
        raise BreakoutNotFound()
    return room.capacity - _member_count(room)


def _check_creator(parent: Room, actor: Actor) -> None:
    """A moderator who is in a breakout cannot create breakouts (SPEC: from the parent only)."""
    if actor.participant_id is None:
        return
    if (
        Participant.objects.filter(
            room=parent, participant_id=actor.participant_id, breakout__isnull=False
        )
        .exclude(status=LEFT)
        .exists()
    ):
        raise BreakoutFromBreakout()


def _rooms_updated(
    parent: Room, out: Outbox, hook: str = "breakout.updated"
) -> list[dict[str, Any]]:
    rooms = breakout_rooms_payload(parent=parent, invitations=True)
    out.to_mods(parent.pk, events.breakouts_updated(rooms))
    # Webhooks keep the SPEC room shape (the invitations are the dashboard's).
    plain = [{k: v for k, v in b.items() if k != "invitations"} for b in rooms]
    webhooks.emit(hook, room=parent, data={"rooms": plain})
    return plain


def _invitations_changed(parent: Room, out: Outbox) -> None:
    """An invitation was made or declined, nobody moved: moderators get ``breakouts-updated``
    (its rooms carry ``invitations``) so the dashboard shows the answer; no webhook."""
    out.to_mods(
        parent.pk, events.breakouts_updated(breakout_rooms_payload(parent=parent, invitations=True))
    )


# Moving people -----------------------------------------------------------------------------


def _fill(
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
    _clear_help(parent.pk, [p.participant_id for p in moving if origins[p.pk]], out)
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


def _enter(
    *, parent: Room, room: Room, people: Sequence[Participant], out: Outbox
) -> list[Participant]:
    """``_fill``, and the room's members hear ``breakout-participant-joined`` of each."""
    moved = _fill(parent=parent, room=room, people=people, out=out)
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
    _clear_help(parent.pk, [p.participant_id for p, _ in back], out)
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


def _empty(
    *, parent: Room, people: Iterable[Participant], reason: LeftReason, out: Outbox
) -> list[Participant]:
    """``_move_back`` for whole rooms emptied at once (clear-all, destroy-all, a timer): nobody
    stays behind to be told."""
    return [p for p, _ in _move_back(parent=parent, people=people, reason=reason, out=out)]


def _return(
    *, parent: Room, people: Iterable[Participant], reason: LeftReason, out: Outbox
) -> list[Participant]:
    """``_move_back``, and the members who stay behind hear ``breakout-participant-left``."""
    back = _move_back(parent=parent, people=people, reason=reason, out=out)
    for p, old in back:
        out.to_members(
            old, events.breakout_participant("left", p), except_participant=p.participant_id
        )
    return [p for p, _ in back]


def _everyone_in_breakouts(parent: Room) -> list[Participant]:
    return list(_present(parent).filter(breakout__isnull=False).order_by("connected_at", "pk"))


# Creating ----------------------------------------------------------------------------------


def _create_rooms(parent: Room, opts: RoomOptions, count: int) -> list[Room]:
    """Create ``count`` breakout rooms with the lowest free numbers (parent locked)."""
    used = set(Room.objects.filter(parent=parent).values_list("number", flat=True))
    if len(used) + count > MAX_BREAKOUTS:
        raise BreakoutLimit()
    numbers = [n for n in range(1, MAX_BREAKOUTS + 1) if n not in used][:count]
    ends_at = clock.now() + timedelta(seconds=opts.duration) if opts.duration else None
    rooms = [
        Room(
            name=f"breakout-{n}",
            parent=parent,
            privacy=parent.privacy,
            mode=Room.Mode.GROUP,
            max_active_talkers=parent.max_active_talkers,
            number=n,
            capacity=opts.capacity,
            audio=opts.audio,
            video=opts.video,
            canvas=opts.canvas,
            share=opts.share,
            ends_at=ends_at,
        )
        for n in numbers
    ]
    for r in rooms:
        r.save(force_insert=True)
    return rooms


def assign[T](
    people: Sequence[T], *, rooms: int, capacity: int, rng: random.Random
) -> list[list[T]]:
    """Spread ``people`` over ``rooms`` groups uniformly at random and evenly (sizes differ by at
    most one), never more than ``capacity`` in a group. Raises ``BreakoutInvalidSize`` if they
    do not fit."""
    if rooms < 1 or capacity < 1 or len(people) > rooms * capacity:
        raise BreakoutInvalidSize(
            f"{len(people)} participants do not fit in {rooms} rooms of {capacity}."
        )
    shuffled = list(people)
    rng.shuffle(shuffled)
    return [shuffled[i::rooms] for i in range(rooms)]


def rooms_needed(count: int, capacity: int) -> int:
    """Create-and-invite uses the fewest rooms that hold everyone (at least one room)."""
    return max(1, math.ceil(count / capacity))


@transaction.atomic
def breakout_rooms_create(
    *,
    parent: Room,
    actor: Actor,
    participants: int,
    audio: bool = True,
    video: bool = True,
    canvas: bool = False,
    share: bool = False,
    max_rooms: int,
    duration: int | None = None,
) -> list[Room]:
    """Create ``max_rooms`` empty breakout rooms of capacity ``participants``.

    Locks the parent. Emits ``breakout-created`` and ``breakouts-updated`` to moderators.
    Raises ``BreakoutLectureMode``, ``InvalidPermissions``, ``BadRequest``,
    ``BreakoutInvalidSize``, ``BreakoutFromBreakout`` (the actor is in a breakout),
    ``BreakoutLimit`` (more than 10 rooms at once).
    """
    parent, opts = _begin_create(
        parent,
        actor,
        participants=participants,
        audio=audio,
        video=video,
        canvas=canvas,
        share=share,
        max_rooms=max_rooms,
        duration=duration,
    )
    rooms = _create_rooms(parent, opts, opts.max_rooms)
    out = Outbox()
    out.to_mods(parent.pk, events.breakout_created([breakout_room_payload(r, []) for r in rooms]))
    _rooms_updated(parent, out, "breakout.created")
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-create",
        data={"rooms": len(rooms), "capacity": opts.capacity, "duration": opts.duration},
    )
    return rooms


@transaction.atomic
def breakout_rooms_create_and_invite(
    *,
    parent: Room,
    actor: Actor,
    participants: int,
    audio: bool = True,
    video: bool = True,
    canvas: bool = False,
    share: bool = False,
    max_rooms: int,
    duration: int | None = None,
    force_join: bool = False,
) -> tuple[list[Room], dict[str, list[str]]]:
    """Create breakout rooms and spread the parent's present participants over them.

    Who is spread: participants with role ``participant`` who are ``active`` in the parent (not
    moderators, not viewers, not anyone already in a breakout). They go uniformly at random and
    evenly into the fewest rooms of capacity ``participants`` that hold them all (at least one
    room), which must be at most ``max_rooms`` (else ``BreakoutInvalidSize``) and fit under the
    10-room limit (else ``BreakoutLimit``); on either error nothing is created.

    The rooms, the invitations and (with ``force_join``) the moves are written in this one
    transaction, before anyone is told. Locks the parent and the participants' rows.

    Emits ``breakout-created``, ``breakout-invited`` (per room) and ``breakouts-updated`` to
    moderators; each invitee gets ``breakout-invitation``, or with ``force_join``
    ``breakout-joined`` (their socket moves into the room's group) and the parent's members hear
    ``participant-updated``. Returns the rooms and ``{room_id: [participant ids]}``.
    """
    parent, opts = _begin_create(
        parent,
        actor,
        participants=participants,
        audio=audio,
        video=video,
        canvas=canvas,
        share=share,
        max_rooms=max_rooms,
        duration=duration,
    )
    force_join = _bool(force_join, "force_join")
    people = list(
        _present(parent)
        .filter(status=ACTIVE, role=Role.PARTICIPANT, breakout__isnull=True)
        .order_by("connected_at", "pk")
    )
    rooms, groups = _spread(parent, opts, people)
    _record_invitations(rooms, groups, by=actor.by, force_join=force_join)
    out = Outbox()
    for room, group in zip(rooms, groups, strict=True):
        if force_join:
            _fill(parent=parent, room=room, people=group, out=out)
        else:
            _tell_invited(parent, room, group, by=actor.by, out=out)
    assignments = {
        str(room.pk): [p.participant_id for p in group]
        for room, group in zip(rooms, groups, strict=True)
    }
    _tell_created(parent, rooms, groups, assignments, by=actor.by, moved=force_join, out=out)
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-create-and-invite",
        data={
            "rooms": len(rooms),
            "capacity": opts.capacity,
            "participants": len(people),
            "force_join": force_join,
        },
    )
    return rooms, assignments


def _tell_invited(
    parent: Room, room: Room, people: Iterable[Participant], *, by: str, out: Outbox
) -> None:
    """Each invitee gets ``breakout-invitation`` to ``room``."""
    payload = breakout_room_payload(room, [])
    for p in people:
        out.to_participant(parent.pk, p.participant_id, events.breakout_invitation(payload, by))


def _tell_created(
    parent: Room,
    rooms: list[Room],
    groups: list[list[Participant]],
    assignments: dict[str, list[str]],
    *,
    by: str,
    moved: bool,
    out: Outbox,
) -> None:
    """Moderators get ``breakout-created`` (with the members when they were ``moved`` in),
    ``breakout-invited`` per room that has invitees, and ``breakouts-updated``."""
    created = [
        breakout_room_payload(r, list(g) if moved else [])
        for r, g in zip(rooms, groups, strict=True)
    ]
    out.to_mods(parent.pk, events.breakout_created(created))
    out.to_mods(
        parent.pk,
        *[
            events.breakout_invited(room.pk, assignments[str(room.pk)], by)
            for room in rooms
            if assignments[str(room.pk)]
        ],
    )
    _rooms_updated(parent, out, "breakout.created")


def _begin_create(parent: Room, actor: Actor, **raw: Any) -> tuple[Room, RoomOptions]:
    """What both creators do first: lock the parent (group mode only), check the actor (a
    moderator, not inside a breakout) and the room options. Returns the locked parent."""
    parent = _lock_parent(parent)
    require_moderator(actor)
    opts = _room_options(parent, **raw)
    _check_creator(parent, actor)
    return parent, opts


def _spread(
    parent: Room, opts: RoomOptions, people: list[Participant]
) -> tuple[list[Room], list[list[Participant]]]:
    """The fewest rooms of ``opts.capacity`` that hold ``people`` (at least one), created, and
    who goes where (uniformly at random, evenly). Raises ``BreakoutLimit`` past the 10-room
    limit, ``BreakoutInvalidSize`` past ``opts.max_rooms``; then nothing is created."""
    count = rooms_needed(len(people), opts.capacity)
    existing = Room.objects.filter(parent=parent).count()
    if existing + count > MAX_BREAKOUTS:
        raise BreakoutLimit(
            f"{len(people)} participants need {count} rooms of {opts.capacity}; only"
            f" {MAX_BREAKOUTS - existing} more breakout rooms are allowed."
        )
    if count > opts.max_rooms:
        raise BreakoutInvalidSize(
            f"{len(people)} participants do not fit in {opts.max_rooms} rooms of {opts.capacity}."
        )
    groups = assign(people, rooms=count, capacity=opts.capacity, rng=_rng)
    return _create_rooms(parent, opts, count), groups


def _record_invitations(
    rooms: list[Room], groups: list[list[Participant]], *, by: str, force_join: bool
) -> None:
    """One invitation per person and room, in one insert: accepted when they are moved now
    (``force_join``: they may go back after clear-all), else pending."""
    now = clock.now()
    status = Invitation.ACCEPTED if force_join else Invitation.PENDING
    BreakoutInvitation.objects.bulk_create(
        BreakoutInvitation(
            breakout=room,
            participant_id=p.participant_id,
            force_join=force_join,
            invited_by=by,
            status=status,
            created_at=now,
        )
        for room, group in zip(rooms, groups, strict=True)
        for p in group
    )


# Inviting, joining, rejecting, leaving -----------------------------------------------------


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
    parent = _lock_parent(parent)
    require_moderator(actor)
    ids = _participant_ids(clients)
    force_join = _bool(force_join, "force_join")
    room = _breakout(parent, room_id)
    found = {p.participant_id: p for p in _present(parent).filter(participant_id__in=ids)}
    if len(found) != len(ids):
        raise NotFound("A participant in clients is not in the room.")
    people = [found[i] for i in ids if found[i].breakout_id != room.pk]
    out = Outbox()
    now = clock.now()
    if force_join:
        if len(people) > _places_left(room):
            raise BreakoutFull()
        for p in people:
            _accept_invitation(room, p.participant_id, actor.by, now, force_join=True)
        _enter(parent=parent, room=room, people=people, out=out)
    else:
        payload = breakout_room_payload(room, breakout_members(room=room))
        for p in people:
            pending = BreakoutInvitation.objects.filter(
                breakout=room, participant_id=p.participant_id, status=Invitation.PENDING
            ).exists()
            if not pending:
                BreakoutInvitation.objects.create(
                    breakout=room,
                    participant_id=p.participant_id,
                    invited_by=actor.by,
                    created_at=now,
                )
            out.to_participant(
                parent.pk, p.participant_id, events.breakout_invitation(payload, actor.by)
            )
    invited = [p.participant_id for p in people]
    if invited:
        out.to_mods(parent.pk, events.breakout_invited(room.pk, invited, actor.by))
        if force_join:
            _rooms_updated(parent, out)
        else:
            _invitations_changed(parent, out)
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-invite",
        data={"room": room.number, "clients": invited, "force_join": force_join},
    )
    return Invited(room=room, clients=invited, force_join=force_join)


def _accept_invitation(
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
    parent = _lock_parent(parent)
    room = _breakout(parent, room_id)
    p = _participant(parent, participant_id)
    if role is not None:
        if not isinstance(role, str) or role not in ROLES:
            raise BadRequest("role must be moderator, participant or viewer.")
        if role == Role.MODERATOR and p.role != Role.MODERATOR:
            raise InvalidPermissions("Only moderators may join as moderator.")
    if p.breakout_id == room.pk:
        return room
    if p.breakout_id is not None:
        raise AlreadyInBreakout()
    if (
        p.role != Role.MODERATOR
        and not BreakoutInvitation.objects.filter(
            breakout=room,
            participant_id=p.participant_id,
            status__in=[Invitation.PENDING, Invitation.ACCEPTED],
        ).exists()
    ):
        raise NotInvited()
    if _places_left(room) < 1:
        raise BreakoutFull()
    now = clock.now()
    if p.role == Role.MODERATOR:
        BreakoutInvitation.objects.filter(
            breakout=room, participant_id=p.participant_id, status=Invitation.PENDING
        ).update(status=Invitation.ACCEPTED)
    else:
        _accept_invitation(room, p.participant_id, p.participant_id, now, force_join=False)
    out = Outbox()
    _enter(parent=parent, room=room, people=[p], out=out)
    _rooms_updated(parent, out)
    out.flush()
    audit_record(
        room=parent, actor=p.participant_id, action="breakout-join", data={"room": room.number}
    )
    return room


@transaction.atomic
def breakout_reject(*, parent: Room, participant_id: str, room_id: Any) -> BreakoutInvitation:
    """Decline a pending invitation. Emits ``breakout-invite-rejected`` to moderators.

    Locks the parent. Raises ``BreakoutLectureMode``, ``BadRequest``, ``BreakoutNotFound``,
    ``NotInvited`` (no pending invitation to that room)."""
    parent = _lock_parent(parent)
    room = _breakout(parent, room_id)
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
    _invitations_changed(parent, out)
    out.flush()
    audit_record(
        room=parent, actor=participant_id, action="breakout-reject", data={"room": room.number}
    )
    return inv


@transaction.atomic
def breakout_leave(*, parent: Room, participant_id: str) -> uuid.UUID:
    """Leave one's breakout: back in the parent, ``active`` again. Returns the room's id.

    Locks the parent and the participant's row. Emits ``breakout-left`` (reason ``left``) to
    the participant (its socket leaves the room's group), ``breakout-participant-left`` to those
    who stay, ``participant-updated`` to the parent's members, ``breakouts-updated`` to
    moderators. Raises ``BreakoutLectureMode``, ``NotFound``, ``NotInBreakout``."""
    parent = _lock_parent(parent)
    p = _participant(parent, participant_id)
    old = p.breakout_id
    if old is None:
        raise NotInBreakout()
    out = Outbox()
    _return(parent=parent, people=[p], reason="left", out=out)
    _rooms_updated(parent, out)
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
    parent = _lock_parent(parent)
    require_moderator(actor)
    p = _participant(parent, participant_id)
    out = Outbox()
    if room_id is None:
        if p.breakout_id is None:
            raise NotInBreakout()
        _return(parent=parent, people=[p], reason="moved", out=out)
        target = None
    else:
        room = _breakout(parent, room_id)
        target = room.number
        if p.breakout_id == room.pk:
            return p
        if _places_left(room) < 1:
            raise BreakoutFull()
        _accept_invitation(room, p.participant_id, actor.by, clock.now(), force_join=True)
        _enter(parent=parent, room=room, people=[p], out=out)
    _rooms_updated(parent, out)
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-move",
        subject=p.participant_id,
        data={"room": target},
    )
    return p


# Clear, destroy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cleared:
    returned: list[Participant]
    rooms: int  # rooms kept (clear) or deleted (destroy)
    parent: Room


@transaction.atomic
def breakout_rooms_clear_all(*, parent: Room, actor: Actor) -> Cleared:
    """Return everyone to the parent and keep the rooms, which can be joined again (their
    invitations stay valid); their timers stop.

    Locks the parent and every member's row. Each member gets ``breakout-left`` (reason
    ``cleared``); the parent's members hear ``participant-updated``, moderators
    ``breakouts-updated``. Raises ``BreakoutLectureMode``, ``InvalidPermissions``."""
    parent = _lock_parent(parent)
    require_moderator(actor)
    out = Outbox()
    back = _empty(parent=parent, people=_everyone_in_breakouts(parent), reason="cleared", out=out)
    rooms = Room.objects.filter(parent=parent).update(ends_at=None, ending_warned=False)
    _rooms_updated(parent, out, "breakout.cleared")
    out.flush()
    audit_record(
        room=parent, actor=actor.by, action="breakout-clear-all", data={"returned": len(back)}
    )
    return Cleared(returned=back, rooms=rooms, parent=parent)


@transaction.atomic
def breakout_rooms_destroy_all(*, parent: Room, actor: Actor) -> Cleared:
    """Return everyone, delete every breakout room (and its invitations), then resume and
    unmute the parent.

    Locks the parent and every member's row. Each member gets ``breakout-left`` (reason
    ``destroyed``); the parent's members hear ``participant-updated`` and, if its state
    changed, ``room-updated``; moderators get ``breakouts-updated`` (an empty list). Raises
    ``BreakoutLectureMode``, ``InvalidPermissions``."""
    parent = _lock_parent(parent)
    require_moderator(actor)
    out = Outbox()
    back = _empty(parent=parent, people=_everyone_in_breakouts(parent), reason="destroyed", out=out)
    doomed = list(Room.objects.filter(parent=parent).values_list("pk", flat=True))
    rooms = len(doomed)
    media.changed(parent.pk, everyone=True, closed=doomed)
    Room.objects.filter(parent=parent).delete()
    changed = [k for k in ("paused", "audio_muted", "video_muted") if getattr(parent, k)]
    for k in changed:
        setattr(parent, k, False)
    if changed:
        parent.save(update_fields=changed)
        out.to_members(parent.pk, lobby_frames.room_updated(parent))
    _rooms_updated(parent, out, "breakout.destroyed")
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-destroy-all",
        data={"returned": len(back), "resumed": changed},
    )
    return Cleared(returned=back, rooms=rooms, parent=parent)


# Timers, broadcast, help -------------------------------------------------------------------


@transaction.atomic
def breakout_extend(*, parent: Room, actor: Actor, room_id: Any = None, seconds: Any) -> list[Room]:
    """Push back the end of one timed breakout room, or (``room_id`` None) of every timed one.

    Rooms without a timer are left alone (a specific untimed room is ``BadRequest``). If the
    new end is more than a minute away, the one-minute warning will be sent again.
    Locks the parent. Members of each room get ``breakout-extended`` {room_id, ends_at};
    moderators ``breakouts-updated``. Raises ``BreakoutLectureMode``, ``InvalidPermissions``,
    ``BadRequest``, ``BreakoutNotFound``."""
    parent = _lock_parent(parent)
    require_moderator(actor)
    if type(seconds) is not int or not 1 <= seconds <= MAX_EXTEND:
        raise BadRequest(f"seconds must be an integer from 1 to {MAX_EXTEND}.")
    if room_id is None:
        rooms = list(Room.objects.filter(parent=parent, ends_at__isnull=False).order_by("number"))
    else:
        room = _breakout(parent, room_id)
        if room.ends_at is None:
            raise BadRequest(gettext_noop("This breakout room has no timer."))
        rooms = [room]
    now = clock.now()
    out = Outbox()
    for r in rooms:
        if r.ends_at is None:  # not reached: only rooms with a timer were read
            continue
        r.ends_at = r.ends_at + timedelta(seconds=seconds)
        r.ending_warned = r.ends_at - now <= timedelta(seconds=ENDING_WARNING) and r.ending_warned
        r.save(update_fields=["ends_at", "ending_warned"])
        out.to_members(r.pk, events.breakout_extended(r.pk, r.ends_at))
    if rooms:
        _rooms_updated(parent, out)
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-extend",
        data={"rooms": [r.number for r in rooms], "seconds": seconds},
    )
    return rooms


@transaction.atomic
def breakout_broadcast(*, parent: Room, actor: Actor, text: Any) -> int:
    """Send a moderator's message to the members of every breakout room (``breakout-message``
    {text, by}). Returns how many rooms it went to. Locks the parent (so a room created or
    destroyed meanwhile is either wholly in or out). Raises ``BreakoutLectureMode``,
    ``InvalidPermissions``, ``BadRequest`` (text not 1-1000 characters)."""
    parent = _lock_parent(parent)
    require_moderator(actor)
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_BROADCAST:
        raise BadRequest(f"text must be 1 to {MAX_BROADCAST} characters.")
    rooms = list(Room.objects.filter(parent=parent).values_list("pk", flat=True))
    out = Outbox()
    frame = events.breakout_message(text, actor.by)
    for pk in rooms:
        out.to_members(pk, frame)
    out.flush()
    audit_record(
        room=parent, actor=actor.by, action="breakout-broadcast", data={"chars": len(text)}
    )
    return len(rooms)


@transaction.atomic
def breakout_help(*, parent: Room, participant_id: str) -> HelpRequest:
    """A breakout member asks for a moderator. The request is stored (one pending per
    participant, ``ANTEROOM_HELP_REQUEST_TTL`` seconds unless answered) and moderators get
    ``breakout-help-requested`` once; a moderator who connects later gets it replayed, and the
    dashboard lists it. Asking again while it is pending is refused and tells nobody.

    Locks the parent. Raises ``BreakoutLectureMode``, ``NotFound``, ``NotInBreakout``,
    ``HelpAlreadyRequested``."""
    parent = _lock_parent(parent)
    p = _participant(parent, participant_id)
    if p.breakout_id is None:
        raise NotInBreakout()
    now = clock.now()
    out = Outbox()
    pending = HelpRequest.objects.filter(
        parent=parent, participant_id=p.participant_id, status=HelpStatus.PENDING
    ).first()
    if pending is not None:
        if pending.expires_at > now:
            raise HelpAlreadyRequested()
        _resolve_help([pending], HelpStatus.EXPIRED, by="", now=now, out=out)
    h = HelpRequest.objects.create(
        parent=parent,
        breakout_id=p.breakout_id,
        participant_id=p.participant_id,
        requested_at=now,
        expires_at=now + timedelta(seconds=settings.ANTEROOM_HELP_REQUEST_TTL),
    )
    out.to_mods(parent.pk, events.breakout_help_requested(h, p))
    out.flush()
    audit_record(room=parent, actor=participant_id, action="breakout-help", data={})
    return h


@dataclass(frozen=True)
class HelpAnswer:
    request: HelpRequest
    effective: bool


def _help_request_to_answer(
    *, parent: Room, participant_id: Any, now: datetime, out: Outbox
) -> tuple[HelpRequest, bool]:
    """A participant's latest help request (the parent locked) and whether it is still open to
    an answer. One past its deadline but not swept yet ends as ``expired`` here (into ``out``).
    Raises ``BadRequest``, ``HelpRequestNotFound`` (the participant never asked)."""
    if not isinstance(participant_id, str) or not participant_id:
        raise BadRequest("participant_id must be a string.")
    last = (
        HelpRequest.objects.filter(parent=parent, participant_id=participant_id)
        .order_by("-requested_at")
        .first()
    )
    if last is None:
        raise HelpRequestNotFound()
    if last.status == HelpStatus.PENDING and last.expires_at > now:
        return last, True
    if last.status == HelpStatus.PENDING:  # past its deadline, not swept yet
        _resolve_help([last], HelpStatus.EXPIRED, by="", now=now, out=out)
    return last, False


@transaction.atomic
def breakout_help_answer(*, parent: Room, actor: Actor, participant_id: Any) -> HelpAnswer:
    """A moderator answers a participant's help request (``breakout-help-answer``, the
    dashboard's "Answered" button). Moderators and the asker get ``breakout-help-resolved``
    (outcome ``answered``, ``by``). The first answer wins: answering a request that is no longer
    pending changes nothing (``effective`` False, the request as it ended).

    Locks the parent. Raises ``BreakoutLectureMode``, ``InvalidPermissions``, ``BadRequest``,
    ``HelpRequestNotFound`` (the participant never asked)."""
    parent = _lock_parent(parent)
    require_moderator(actor)
    now = clock.now()
    out = Outbox()
    last, still_open = _help_request_to_answer(
        parent=parent, participant_id=participant_id, now=now, out=out
    )
    if not still_open:
        out.flush()
        return HelpAnswer(request=last, effective=False)
    _resolve_help([last], HelpStatus.ANSWERED, by=actor.by, now=now, out=out)
    out.flush()
    audit_record(room=parent, actor=actor.by, action="breakout-help-answer", subject=participant_id)
    return HelpAnswer(request=last, effective=True)


@dataclass(frozen=True)
class HelpJoin:
    request: HelpRequest
    room: Room | None  # the breakout room the moderator is in now (None: nothing changed)
    effective: bool


@transaction.atomic
def breakout_help_join(*, parent: Room, actor: Actor, participant_id: Any) -> HelpJoin:
    """A moderator answers a help request by joining the asker's breakout room (the
    dashboard's "Join room N"): the moderator's own presence moves into that room (out of
    another breakout if need be, like ``breakout-join``; moderators need no invitation, and
    count towards capacity) and the request is ``answered`` by them, in one transaction. A
    request that already ended changes nothing and moves nobody (``effective`` False).

    Locks the parent and both participants' rows. Emits what ``breakout-join`` emits (the
    moderator's ``breakout-joined``, ``breakout-participant-joined`` to the room's members,
    ``participant-updated``, ``breakouts-updated``) and ``breakout-help-resolved`` to moderators
    and the asker. Raises ``BreakoutLectureMode``, ``InvalidPermissions``, ``BadRequest``,
    ``HelpRequestNotFound`` (the participant never asked), ``NotFound`` (the moderator has no
    presence in the room: a dashboard without its live connection cannot join a call),
    ``BreakoutFull``."""
    parent = _lock_parent(parent)
    require_moderator(actor)
    now = clock.now()
    out = Outbox()
    last, still_open = _help_request_to_answer(
        parent=parent, participant_id=participant_id, now=now, out=out
    )
    if not still_open:
        out.flush()
        return HelpJoin(request=last, room=None, effective=False)
    if actor.participant_id is None:
        raise NotFound("Only a moderator connected to the room can join a breakout room.")
    me = _present(parent).filter(participant_id=actor.participant_id).first()
    if me is None:
        raise NotFound("You are not connected to the room; open the dashboard to join the call.")
    room = Room.objects.get(pk=last.breakout_id)
    if me.breakout_id != room.pk:
        if _places_left(room) < 1:
            raise BreakoutFull()
        BreakoutInvitation.objects.filter(
            breakout=room, participant_id=me.participant_id, status=Invitation.PENDING
        ).update(status=Invitation.ACCEPTED)
        _enter(parent=parent, room=room, people=[me], out=out)
    _resolve_help([last], HelpStatus.ANSWERED, by=actor.by, now=now, out=out)
    _rooms_updated(parent, out)
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-help-join",
        subject=participant_id,
        data={"room": room.number},
    )
    return HelpJoin(request=last, room=room, effective=True)


def _resolve_help(
    requests: Iterable[HelpRequest], status: str, *, by: str, now: datetime, out: Outbox
) -> int:
    """End pending help requests (conditional update: each ends once) and tell moderators and
    each asker ``breakout-help-resolved``."""
    done = 0
    for h in requests:
        if not HelpRequest.objects.filter(pk=h.pk, status=HelpStatus.PENDING).update(
            status=status, resolved_by=by, resolved_at=now
        ):
            continue
        h.status, h.resolved_by, h.resolved_at = status, by, now
        frame = events.breakout_help_resolved(h)
        out.to_mods(h.parent_id, frame)
        out.to_participant(h.parent_id, h.participant_id, frame)
        done += 1
    return done


def _clear_help(parent_id: uuid.UUID, participant_ids: Iterable[str], out: Outbox) -> None:
    """Participants left their breakout room (or the room): their pending requests end."""
    ids = list(participant_ids)
    if not ids:
        return
    pending = HelpRequest.objects.filter(
        parent_id=parent_id, participant_id__in=ids, status=HelpStatus.PENDING
    )
    _resolve_help(list(pending), HelpStatus.CLEARED, by="", now=clock.now(), out=out)


def help_requests_sweep(*, now: datetime) -> int:
    """Expire pending help requests past ``expires_at`` (every process's sweeper; each ends
    once). Returns how many."""
    due = list(HelpRequest.objects.filter(status=HelpStatus.PENDING, expires_at__lte=now)[:500])
    if not due:
        return 0
    with transaction.atomic():
        out = Outbox()
        n = _resolve_help(due, HelpStatus.EXPIRED, by="", now=now, out=out)
        out.flush()
    return n


# Hooks called by the lobby -----------------------------------------------------------------


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
    _clear_help(participant.room_id, [participant.participant_id], out)
    parent = Room.objects.filter(pk=participant.room_id).first()
    if parent is not None:
        _rooms_updated(parent, out)
    out.flush()


def breakouts_sweep(*, now: datetime) -> int:
    """Enforce breakout timers (stored deadlines); idempotent and safe in every process.

    At ``ends_at`` - 60 s the room's members get ``breakout-ending`` (a conditional update of
    ``ending_warned``: exactly once); at ``ends_at`` everyone returns to the parent
    (``breakout-left`` reason ``timer``) and the timer is cleared (a conditional update on
    ``ends_at``: exactly once); the room stays, like after clear-all. One transaction per room.
    Returns how many rooms it acted on."""
    acted = 0
    expired = Room.objects.filter(parent__isnull=False, ends_at__lte=now)
    for room_id, parent_id, ends_at in list(
        expired.values_list("pk", "parent_id", "ends_at")[:200]
    ):
        if parent_id is not None and ends_at is not None:  # both filtered on above
            acted += _expire(room_id=room_id, parent_id=parent_id, ends_at=ends_at)
    soon = now + timedelta(seconds=ENDING_WARNING)
    ending = Room.objects.filter(
        parent__isnull=False, ending_warned=False, ends_at__gt=now, ends_at__lte=soon
    )
    for room_id, ends_at in list(ending.values_list("pk", "ends_at")[:200]):
        if ends_at is None:  # filtered on above
            continue
        with transaction.atomic():
            if Room.objects.filter(pk=room_id, ending_warned=False, ends_at=ends_at).update(
                ending_warned=True
            ):
                out = Outbox()
                out.to_members(room_id, events.breakout_ending(room_id, ends_at))
                out.flush()
                acted += 1
    return acted


@transaction.atomic
def _expire(*, room_id: uuid.UUID, parent_id: uuid.UUID, ends_at: datetime) -> int:
    parent = Room.objects.select_for_update().filter(pk=parent_id).first()
    if parent is None:
        return 0
    if not Room.objects.filter(pk=room_id, ends_at=ends_at).update(
        ends_at=None, ending_warned=False
    ):
        return 0
    people = list(_present(parent).filter(breakout_id=room_id).order_by("connected_at", "pk"))
    out = Outbox()
    back = _empty(parent=parent, people=people, reason="timer", out=out)
    _rooms_updated(parent, out, "breakout.timer_ended")
    out.flush()
    audit_record(room=parent, actor="system", action="breakout-timer", data={"returned": len(back)})
    return 1
