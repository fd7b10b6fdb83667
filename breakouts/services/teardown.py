"""Ending breakouts for everyone: clear all (the rooms stay) and destroy all."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from lobby import frames as lobby_frames
from lobby import media
from lobby.audit import audit_record
from lobby.models import Participant, Room
from lobby.services import Actor, require_moderator

from ..events import Outbox
from .locks import lock_parent, present
from .moves import empty
from .notices import rooms_updated


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
    parent = lock_parent(parent)
    require_moderator(actor)
    out = Outbox()
    back = empty(parent=parent, people=_everyone_in_breakouts(parent), reason="cleared", out=out)
    rooms = Room.objects.filter(parent=parent).update(ends_at=None, ending_warned=False)
    rooms_updated(parent, out, "breakout.cleared")
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
    parent = lock_parent(parent)
    require_moderator(actor)
    out = Outbox()
    back = empty(parent=parent, people=_everyone_in_breakouts(parent), reason="destroyed", out=out)
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
    rooms_updated(parent, out, "breakout.destroyed")
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-destroy-all",
        data={"returned": len(back), "resumed": changed},
    )
    return Cleared(returned=back, rooms=rooms, parent=parent)


def _everyone_in_breakouts(parent: Room) -> list[Participant]:
    return list(present(parent).filter(breakout__isnull=False).order_by("connected_at", "pk"))
