"""Create-and-invite's assignment: how many rooms, and who goes into which (uniformly at
random, evenly, within the capacity)."""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Sequence

from lobby.errors import BreakoutInvalidSize, BreakoutLimit
from lobby.models import Participant, Room

from .inputs import MAX_BREAKOUTS, RoomOptions

_rng: random.Random = secrets.SystemRandom()


def assign[T](
    people: Sequence[T], *, rooms: int, capacity: int, rng: random.Random
) -> list[list[T]]:
    """Spread ``people`` over ``rooms`` groups uniformly at random and evenly (sizes differ by at
    most one), never more than ``capacity`` in a group. Raises ``BreakoutInvalidSize`` if they
    do not fit."""
    if rooms < 1 or capacity < 1 or len(people) > rooms * capacity:
        raise BreakoutInvalidSize(
            f"{len(people)} participants do not fit in {rooms} rooms of {capacity}."
        )
    shuffled = list(people)
    rng.shuffle(shuffled)
    return [shuffled[i::rooms] for i in range(rooms)]


def rooms_needed(count: int, capacity: int) -> int:
    """Create-and-invite uses the fewest rooms that hold everyone (at least one room)."""
    return max(1, math.ceil(count / capacity))


def spread(parent: Room, opts: RoomOptions, people: list[Participant]) -> list[list[Participant]]:
    """Who goes where: ``people`` in the fewest rooms of ``opts.capacity`` that hold them (at
    least one), uniformly at random and evenly; the caller creates one room per group. Raises
    ``BreakoutLimit`` past the 10-room limit, ``BreakoutInvalidSize`` past ``opts.max_rooms``,
    before anything is created (the parent is locked)."""
    count = rooms_needed(len(people), opts.capacity)
    existing = Room.objects.filter(parent=parent).count()
    if existing + count > MAX_BREAKOUTS:
        raise BreakoutLimit(
            f"{len(people)} participants need {count} rooms of {opts.capacity}; only"
            f" {MAX_BREAKOUTS - existing} more breakout rooms are allowed."
        )
    if count > opts.max_rooms:
        raise BreakoutInvalidSize(
            f"{len(people)} participants do not fit in {opts.max_rooms} rooms of {opts.capacity}."
        )
    return assign(people, rooms=count, capacity=opts.capacity, rng=_rng)
