"""Helpers for the breakout tests: a parent room with a moderator and participants, present
through the lobby's own join service, and readers of what the services sent to whom."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lobby import events, services
from lobby.models import Participant, Room
from tests.factories import conn as conn
from tests.factories import frames_to as frames_to
from tests.factories import make_room, present
from tests.factories import members as members
from tests.factories import mods as mods

# The old name of ``present`` (re-exported above with the group helpers for branches written
# against the old layout; new tests import them from tests.factories).
join = present


@dataclass
class Party:
    room: Room
    mod: services.Actor
    people: list[str] = field(default_factory=list)
    viewers: list[str] = field(default_factory=list)

    def refresh(self) -> Room:
        self.room.refresh_from_db()
        return self.room


def party(
    name: str = "class", *, n: int = 6, viewers: int = 0, mods: int = 1, **room_fields: Any
) -> Party:
    """A parent room with ``mods`` moderators (``mod``, ``mod2``…), ``n`` participants
    (``p0``…) and ``viewers`` viewers (``v0``…), all present."""
    room = make_room(name, **room_fields)
    first = None
    for i in range(mods):
        m = present(room, "mod" if i == 0 else f"mod{i + 1}", owner=True, name=f"Mod {i}")
        first = first or m
    assert first is not None
    people = [present(room, f"p{i}").participant_id for i in range(n)]
    watchers = [present(room, f"v{i}", viewer=True).participant_id for i in range(viewers)]
    return Party(room=room, mod=services.Actor.participant(first), people=people, viewers=watchers)


def who(room: Room, pid: str) -> Participant:
    return Participant.objects.get(room=room, participant_id=pid)


def to_person(sent: Any, room: Room, pid: str) -> list[dict[str, Any]]:
    return frames_to(sent, events.participant_group(room.pk, pid))


def membership(parent: Room) -> dict[str, str | None]:
    """participant id → breakout id (None in the parent), for everyone present."""
    return {
        p.participant_id: str(p.breakout_id) if p.breakout_id else None
        for p in Participant.objects.filter(room=parent).exclude(status="left")
    }


def assert_consistent(parent: Room) -> None:
    """paused in the parent ⇔ in a breakout; no breakout over capacity; at most 10 rooms."""
    for p in Participant.objects.filter(room=parent):
        if p.status == "left":
            assert p.breakout_id is None, p
        else:
            assert (p.status == "paused") == (p.breakout_id is not None), p
    rooms = list(Room.objects.filter(parent=parent))
    assert len(rooms) <= 10
    for r in rooms:
        n = Participant.objects.filter(breakout=r).exclude(status="left").count()
        assert r.capacity is not None and n <= r.capacity, (r, n)
