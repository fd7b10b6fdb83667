"""Properties of create-and-invite's random assignment: everyone placed exactly once, sizes that
differ by at most one, capacity respected — or a clear error with nothing created."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from breakouts import services as bs
from breakouts.models import BreakoutInvitation
from breakouts.services import assignment
from lobby.errors import BreakoutInvalidSize, BreakoutLimit
from lobby.models import Participant, Room
from tests.factories import present

from .helpers import assert_consistent, party


@given(
    people=st.lists(st.integers(), unique=True, max_size=120),
    rooms=st.integers(1, 10),
    capacity=st.integers(2, 49),
    seed=st.integers(0, 2**32 - 1),
)
def test_assign_places_everyone_once_evenly_within_capacity(people, rooms, capacity, seed):
    if len(people) > rooms * capacity:
        with pytest.raises(BreakoutInvalidSize):
            bs.assign(people, rooms=rooms, capacity=capacity, rng=random.Random(seed))
        return
    groups = bs.assign(people, rooms=rooms, capacity=capacity, rng=random.Random(seed))
    assert len(groups) == rooms
    assert Counter(x for g in groups for x in g) == Counter(people)
    sizes = [len(g) for g in groups]
    assert max(sizes) - min(sizes) <= 1
    assert max(sizes) <= capacity


@given(count=st.integers(0, 200), capacity=st.integers(2, 49))
def test_the_fewest_rooms_that_hold_everyone(count, capacity):
    n = bs.rooms_needed(count, capacity)
    assert n >= 1 and n * capacity >= count
    assert n == 1 or (n - 1) * capacity < count


def test_assignment_is_not_fixed_by_arrival_order():
    """Over many draws each of the first four people lands in each of two rooms."""
    rng = assignment._rng
    draws = (bs.assign(list(range(4)), rooms=2, capacity=2, rng=rng) for _ in range(200))
    seen = {(person, room) for groups in draws for room, g in enumerate(groups) for person in g}
    assert seen == {(p, r) for p in range(4) for r in range(2)}


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    n=st.integers(0, 14),
    capacity=st.integers(2, 5),
    max_rooms=st.integers(1, 10),
    existing=st.integers(0, 10),
    force=st.booleans(),
)
def test_create_and_invite_in_the_database(sent, n, capacity, max_rooms, existing, force):
    Room.objects.all().delete()
    p = party(n=0, viewers=1, max_active_talkers=12)
    for i in range(n):
        present(p.room, f"p{i}")
    if existing:
        bs.breakout_rooms_create(parent=p.room, actor=p.mod, participants=2, max_rooms=existing)
    need = bs.rooms_needed(n, capacity)
    try:
        rooms, assignments = bs.breakout_rooms_create_and_invite(
            parent=p.room, actor=p.mod, participants=capacity, max_rooms=max_rooms,
            force_join=force,
        )  # fmt: skip
    except BreakoutLimit:
        assert existing + need > 10
        outcome = None
    except BreakoutInvalidSize:
        assert need > max_rooms and existing + need <= 10
        outcome = None
    else:
        assert existing + need <= 10 and need <= max_rooms
        outcome = (rooms, assignments)
    if outcome is None:
        # Nothing was created, invited or moved.
        assert Room.objects.filter(parent=p.room).count() == existing
        assert not BreakoutInvitation.objects.exists()
        assert not Participant.objects.filter(breakout__isnull=False).exists()
        return
    rooms, assignments = outcome
    assert len(rooms) == need
    placed = [pid for ids in assignments.values() for pid in ids]
    assert sorted(placed) == sorted(f"p{i}" for i in range(n))  # moderator, viewer left out
    sizes = [len(ids) for ids in assignments.values()]
    assert max(sizes) - min(sizes) <= 1 and max(sizes) <= capacity
    in_rooms = Participant.objects.filter(breakout__isnull=False).count()
    assert in_rooms == (n if force else 0)
    assert BreakoutInvitation.objects.count() == n
    assert_consistent(p.room)
