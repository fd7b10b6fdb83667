"""What moderators (and webhooks) hear after a change: the breakout rooms as they now are."""

from __future__ import annotations

from typing import Any

from lobby import webhooks
from lobby.models import Room

from .. import events
from ..events import Outbox
from ..selectors import breakout_rooms_payload


def rooms_updated(
    parent: Room, out: Outbox, hook: str = "breakout.updated"
) -> list[dict[str, Any]]:
    rooms = breakout_rooms_payload(parent=parent, invitations=True)
    out.to_mods(parent.pk, events.breakouts_updated(rooms))
    # Webhooks keep the SPEC room shape (the invitations are the dashboard's).
    plain = [{k: v for k, v in b.items() if k != "invitations"} for b in rooms]
    webhooks.emit(hook, room=parent, data={"rooms": plain})
    return plain


def invitations_changed(parent: Room, out: Outbox) -> None:
    """An invitation was made or declined, nobody moved: moderators get ``breakouts-updated``
    (its rooms carry ``invitations``) so the dashboard shows the answer; no webhook."""
    out.to_mods(
        parent.pk, events.breakouts_updated(breakout_rooms_payload(parent=parent, invitations=True))
    )
