"""Breakout reads: the SPEC §3 room shape with members."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lobby import events
from lobby.models import Participant, Room

if TYPE_CHECKING:
    from .events import HelpRequestedFrame, InvitationFrame


def breakout_room_payload(room: Room, members: list[Participant]) -> dict[str, Any]:
    """``{id, name, number, capacity, audio, video, canvas, share, members, ends_at}``."""
    return {
        "id": str(room.pk),
        "name": room.name,
        "number": room.number,
        "capacity": room.capacity,
        "audio": room.audio,
        "video": room.video,
        "canvas": room.canvas,
        "share": room.share,
        "members": [events.participant_payload(p) for p in members],
        "ends_at": events._ts(room.ends_at),
    }


def breakout_members(*, room: Room) -> list[Participant]:
    """Who is in a breakout room now, in arrival order."""
    return list(
        Participant.objects.filter(breakout=room)
        .exclude(status=Participant.Status.LEFT)
        .order_by("connected_at", "pk")
    )


def breakout_room_with_members(*, room: Room) -> dict[str, Any]:
    return breakout_room_payload(room, breakout_members(room=room))


def breakout_rooms(*, parent: Room) -> list[Room]:
    return list(Room.objects.filter(parent=parent).order_by("number"))


def breakout_rooms_payload(*, parent: Room, invitations: bool = False) -> list[dict[str, Any]]:
    """Every breakout room of a parent with its members, by number (two queries).

    ``invitations`` (moderators' frames and pages only) adds each room's ``invitations``: see
    :func:`breakout_invitations` (two more queries)."""
    rooms = breakout_rooms(parent=parent)
    if not rooms:
        return []
    members: dict[Any, list[Participant]] = {r.pk: [] for r in rooms}
    for p in (
        Participant.objects.filter(breakout__in=rooms)
        .exclude(status=Participant.Status.LEFT)
        .order_by("connected_at", "pk")
    ):
        members[p.breakout_id].append(p)
    payloads = [breakout_room_payload(r, members[r.pk]) for r in rooms]
    if invitations:
        by_room = breakout_invitations(parent=parent)
        for b in payloads:
            b["invitations"] = by_room.get(b["id"], [])
    return payloads


def breakouts_snapshot(
    *, room: Room, moderator: bool, breakout_id: Any = None
) -> list[dict[str, Any]]:
    """The ``joined`` snapshot's ``breakouts``. Moderators: every room with its members and
    ``invitations``. Anyone else: every room (so an invitation can name it), but members only
    of the room it is in itself - nobody learns another breakout room's members from it."""
    rooms = breakout_rooms_payload(parent=room, invitations=moderator)
    if moderator:
        return rooms
    mine = str(breakout_id) if breakout_id else None
    return [b if b["id"] == mine else {**b, "members": []} for b in rooms]


def breakout_invitations(*, parent: Room) -> dict[str, list[dict[str, Any]]]:
    """Each breakout room's invitations as a moderator sees them, by room id: per invited
    participant its latest invitation to that room, ``{participant_id, name, status}`` with
    ``status`` ``pending`` (no answer yet), ``accepted`` (joined, or moved in by a moderator;
    it stays valid after they leave) or ``rejected`` (declined), oldest first. ``name`` is the
    participant's name in the parent (``None`` if it never joined). Two queries. Moderators'
    audience only: it names who was asked into which room."""
    from .models import BreakoutInvitation

    latest: dict[tuple[str, str], BreakoutInvitation] = {}
    for inv in BreakoutInvitation.objects.filter(breakout__parent=parent).order_by(
        "created_at", "pk"
    ):
        key = (str(inv.breakout_id), inv.participant_id)
        latest.pop(key, None)  # re-invited: the latest row wins, in the order it was made
        latest[key] = inv
    names = dict(
        Participant.objects.filter(
            room=parent, participant_id__in={pid for _, pid in latest}
        ).values_list("participant_id", "name")
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for (room_id, pid), inv in latest.items():
        out.setdefault(room_id, []).append(
            {"participant_id": pid, "name": names.get(pid) or None, "status": inv.status}
        )
    return out


def invitation_frames(*, parent: Room, participant_id: str) -> list[InvitationFrame]:
    """``breakout-invitation`` frames for a participant's pending invitations (to rooms it is not
    in), replayed when its socket joins, so a reconnecting guest still sees them."""
    from .events import breakout_invitation
    from .models import BreakoutInvitation

    invitations = list(
        BreakoutInvitation.objects.filter(
            breakout__parent=parent,
            participant_id=participant_id,
            status=BreakoutInvitation.Status.PENDING,
        )
        .exclude(breakout__breakout_members__participant_id=participant_id)
        .select_related("breakout")
        .order_by("created_at", "pk")
    )
    return [
        breakout_invitation(breakout_room_with_members(room=inv.breakout), inv.invited_by)
        for inv in invitations
    ]


def pending_help_requests(*, parent: Room) -> list[tuple[Any, Participant]]:
    """(help request, participant) for every pending, unexpired help request of a room, oldest
    first (the dashboard and a moderator's join replay)."""
    from lobby import clock

    from .models import HelpRequest

    rows = list(
        HelpRequest.objects.filter(
            parent=parent, status=HelpRequest.Status.PENDING, expires_at__gt=clock.now()
        ).order_by("requested_at")
    )
    people = {
        p.participant_id: p
        for p in Participant.objects.filter(
            room=parent, participant_id__in=[h.participant_id for h in rows]
        )
    }
    return [(h, people[h.participant_id]) for h in rows if h.participant_id in people]


def help_frames(*, parent: Room, participant_id: str) -> list[HelpRequestedFrame]:
    """``breakout-help-requested`` for every pending help request, replayed when a moderator's
    socket joins (nothing for others)."""
    from lobby.models import Role

    from .events import breakout_help_requested

    me = Participant.objects.filter(room=parent, participant_id=participant_id).first()
    if me is None or me.role != Role.MODERATOR:
        return []
    return [breakout_help_requested(h, p) for h, p in pending_help_requests(parent=parent)]
