"""A moderator's message to every breakout room."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from lobby.audit import audit_record
from lobby.errors import BadRequest
from lobby.models import Room
from lobby.services import Actor, require_moderator

from .. import events
from ..events import Outbox
from .locks import lock_parent

MAX_BROADCAST = 1000


@transaction.atomic
def breakout_broadcast(*, parent: Room, actor: Actor, text: Any) -> int:
    """Send a moderator's message to the members of every breakout room (``breakout-message``
    {text, by}). Returns how many rooms it went to. Locks the parent (so a room created or
    destroyed meanwhile is either wholly in or out). Raises ``BreakoutLectureMode``,
    ``InvalidPermissions``, ``BadRequest`` (text not 1-1000 characters)."""
    parent = lock_parent(parent)
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
