"""Breakout reads: the SPEC §3 room shape with members."""

from __future__ import annotations

from typing import Any

from lobby import events
from lobby.models import Participant, Room


def breakout_room_payload(room: Room, members: list[Participant]) -> dict[str, Any]:
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


def breakout_rooms(*, parent: Room) -> list[Room]:
    return list(Room.objects.filter(parent=parent).order_by("number"))


def breakout_rooms_payload(*, parent: Room) -> list[dict[str, Any]]:
    rooms = breakout_rooms(parent=parent)
    if not rooms:
        return []
    members: dict[Any, list[Participant]] = {r.pk: [] for r in rooms}
    for p in Participant.objects.filter(breakout__in=rooms).exclude(status="left"):
        members[p.breakout_id].append(p)
    return [breakout_room_payload(r, members[r.pk]) for r in rooms]
