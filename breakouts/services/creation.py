"""Creating breakout rooms: empty ones (``breakout-create``), or as many as the present
participants need, with invitations or moves (``breakout-create-and-invite``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Unpack

from django.db import transaction

from lobby import clock
from lobby.audit import audit_record
from lobby.errors import BreakoutFromBreakout, BreakoutLimit
from lobby.models import Participant, Role, Room
from lobby.services import Actor, require_moderator

from .. import events
from ..events import Outbox
from ..models import BreakoutInvitation
from ..selectors import breakout_room_payload
from .assignment import spread
from .inputs import MAX_BREAKOUTS, BreakoutOptions, RoomOptions, clean_bool, clean_room_options
from .locks import lock_parent, present
from .moves import fill
from .notices import rooms_updated

Invitation = BreakoutInvitation.Status
ACTIVE = Participant.Status.ACTIVE
LEFT = Participant.Status.LEFT


@transaction.atomic
def breakout_rooms_create(
    *, parent: Room, actor: Actor, **options: Unpack[BreakoutOptions]
) -> list[Room]:
    """Create ``max_rooms`` empty breakout rooms of capacity ``participants``.

    Locks the parent. Emits ``breakout-created`` and ``breakouts-updated`` to moderators.
    Raises ``BreakoutLectureMode``, ``InvalidPermissions``, ``BadRequest``,
    ``BreakoutInvalidSize``, ``BreakoutFromBreakout`` (the actor is in a breakout),
    ``BreakoutLimit`` (more than 10 rooms at once).
    """
    parent, opts = _begin_create(parent, actor, options)
    rooms = _create_rooms(parent, opts, opts.max_rooms)
    out = Outbox()
    out.to_mods(parent.pk, events.breakout_created([breakout_room_payload(r, []) for r in rooms]))
    rooms_updated(parent, out, "breakout.created")
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
    force_join: bool = False,
    **options: Unpack[BreakoutOptions],
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
    parent, opts = _begin_create(parent, actor, options)
    force_join = clean_bool(force_join, "force_join")
    people = _to_spread(parent)
    groups = spread(parent, opts, people)
    rooms = _create_rooms(parent, opts, len(groups))
    _record_invitations(rooms, groups, by=actor.by, force_join=force_join)
    out = Outbox()
    for room, group in zip(rooms, groups, strict=True):
        if force_join:
            fill(parent=parent, room=room, people=group, out=out)
        else:
            _tell_invited(parent, room, group, by=actor.by, out=out)
    assignments = _assignments(rooms, groups)
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


def _to_spread(parent: Room) -> list[Participant]:
    """Who create-and-invite spreads (locked, in arrival order): participants with role
    ``participant``, ``active`` in the parent: not moderators, not viewers, not anyone already
    in a breakout."""
    return list(
        present(parent)
        .filter(status=ACTIVE, role=Role.PARTICIPANT, breakout__isnull=True)
        .order_by("connected_at", "pk")
    )


def _assignments(rooms: list[Room], groups: list[list[Participant]]) -> dict[str, list[str]]:
    """``{room_id: [participant ids]}``, what create-and-invite returns."""
    return {
        str(room.pk): [p.participant_id for p in group]
        for room, group in zip(rooms, groups, strict=True)
    }


def _begin_create(parent: Room, actor: Actor, options: BreakoutOptions) -> tuple[Room, RoomOptions]:
    """What both creators do first: lock the parent (group mode only), check the actor (a
    moderator, not inside a breakout) and the room options. Returns the locked parent."""
    parent = lock_parent(parent)
    require_moderator(actor)
    opts = clean_room_options(parent, options)
    _check_creator(parent, actor)
    return parent, opts


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
    rooms_updated(parent, out, "breakout.created")
