"""Reads: snapshots for sockets, lists for REST and the dashboard."""

from __future__ import annotations

from typing import Any

from . import clock, extensions
from .models import EntryRequest, Participant, Room


def participants_present(*, room: Room) -> list[Participant]:
    """Everyone in the room (active or paused in a breakout), in arrival order."""
    return list(Participant.objects.filter(room=room).exclude(status=Participant.Status.LEFT))


def pending_requests(*, room: Room) -> list[EntryRequest]:
    """Pending knocks, oldest first (the queue). A knock past its deadline is not shown even
    before a sweeper has marked it timed out (right after a restart or a database outage)."""
    return list(
        EntryRequest.objects.filter(
            room=room, status=EntryRequest.Status.PENDING, expires_at__gt=clock.now()
        )
    )


def entry_requests(*, room: Room, status: str | None = None) -> list[EntryRequest]:
    qs = EntryRequest.objects.filter(room=room).select_related("room")
    if status:
        qs = qs.filter(status=status)
    if status == EntryRequest.Status.PENDING:
        qs = qs.filter(expires_at__gt=clock.now())  # as above: expired is not waiting
    return list(qs)


def breakouts_for(*, room: Room, moderator: bool, breakout_id: Any = None) -> list[dict[str, Any]]:
    """The breakout rooms of a parent (SPEC §3 object shape) as the snapshot's reader may see
    them: a moderator's also carry what an app adds for moderators (breakouts: invitations);
    ``breakout_id`` is the room the reader is in, if any (the app decides what that shows)."""
    return extensions.snapshot("breakouts", room=room, moderator=moderator, breakout_id=breakout_id)
