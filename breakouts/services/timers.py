"""Breakout timers: a moderator extends them; the sweeper warns a minute before the end and
returns everyone at ``ends_at``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_noop

from lobby import clock
from lobby.audit import audit_record
from lobby.errors import BadRequest
from lobby.models import Room
from lobby.services import Actor, require_moderator

from .. import events
from ..events import Outbox
from .locks import breakout_in, lock_parent, present
from .moves import empty
from .notices import rooms_updated

MAX_EXTEND = 14_400


ENDING_WARNING = 60  # seconds before ``ends_at`` that members hear ``breakout-ending``


@transaction.atomic
def breakout_extend(*, parent: Room, actor: Actor, room_id: Any = None, seconds: Any) -> list[Room]:
    """Push back the end of one timed breakout room, or (``room_id`` None) of every timed one.

    Rooms without a timer are left alone (a specific untimed room is ``BadRequest``). If the
    new end is more than a minute away, the one-minute warning will be sent again.
    Locks the parent. Members of each room get ``breakout-extended`` {room_id, ends_at};
    moderators ``breakouts-updated``. Raises ``BreakoutLectureMode``, ``InvalidPermissions``,
    ``BadRequest``, ``BreakoutNotFound``."""
    parent = lock_parent(parent)
    require_moderator(actor)
    if type(seconds) is not int or not 1 <= seconds <= MAX_EXTEND:
        raise BadRequest(f"seconds must be an integer from 1 to {MAX_EXTEND}.")
    if room_id is None:
        rooms = list(Room.objects.filter(parent=parent, ends_at__isnull=False).order_by("number"))
    else:
        room = breakout_in(parent, room_id)
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
        rooms_updated(parent, out)
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-extend",
        data={"rooms": [r.number for r in rooms], "seconds": seconds},
    )
    return rooms


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
    people = list(present(parent).filter(breakout_id=room_id).order_by("connected_at", "pk"))
    out = Outbox()
    back = empty(parent=parent, people=people, reason="timer", out=out)
    rooms_updated(parent, out, "breakout.timer_ended")
    out.flush()
    audit_record(room=parent, actor="system", action="breakout-timer", data={"returned": len(back)})
    return 1
