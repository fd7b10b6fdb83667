"""Reads: snapshots for sockets, lists for REST and the dashboard."""

from __future__ import annotations

from typing import Any

from .models import EntryRequest, Participant, Room


def participants_present(*, room: Room) -> list[Participant]:
    """Everyone in the room (active or paused in a breakout), in arrival order."""
    return list(Participant.objects.filter(room=room).exclude(status=Participant.Status.LEFT))


def pending_requests(*, room: Room) -> list[EntryRequest]:
    """Pending knocks, oldest first (the queue)."""
    return list(EntryRequest.objects.filter(room=room, status=EntryRequest.Status.PENDING))


def entry_requests(*, room: Room, status: str | None = None) -> list[EntryRequest]:
    qs = EntryRequest.objects.filter(room=room).select_related("room")
    if status:
        qs = qs.filter(status=status)
    return list(qs)


def breakouts_for(*, room: Room, moderator: bool) -> list[dict[str, Any]]:
    """The breakout rooms of a parent with their members (SPEC §3 object shape)."""
    from breakouts.selectors import breakout_rooms_payload

    return breakout_rooms_payload(parent=room)


def recent_decisions(*, room: Room, limit: int = 10) -> list[EntryRequest]:
    """The latest admitted or denied knocks of a room, newest first (the dashboard's log)."""
    return list(
        EntryRequest.objects.filter(
            room=room, status__in=[EntryRequest.Status.ADMITTED, EntryRequest.Status.DENIED]
        ).order_by("-resolved_at")[:limit]
    )
