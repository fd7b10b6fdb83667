"""Races with real threads, each with its own database connection (in-process asyncio would not
race: the ORM runs on one thread). On SQLite the file test database serialises writers at BEGIN;
on PostgreSQL the parent row lock does."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connection

from breakouts import services as bs
from lobby.errors import AnteroomError
from lobby.models import Participant, Room

from .helpers import assert_consistent, party

pytestmark = pytest.mark.django_db(transaction=True)


def _race(fns: list[Any]) -> list[str]:
    """Run the calls at once from threads; the outcome of each: "ok" or its error code."""
    barrier = threading.Barrier(len(fns))
    results: list[str] = [""] * len(fns)

    def run(i: int) -> None:
        try:
            barrier.wait()
            fns[i]()
            results[i] = "ok"
        except AnteroomError as exc:
            results[i] = exc.code
        except Exception as exc:  # reported in the assertion
            results[i] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_joins_into_a_nearly_full_breakout_never_exceed_capacity(sent):
    p = party(n=9)
    [room] = bs.breakout_rooms_create(parent=p.room, actor=p.mod, participants=4, max_rooms=1)
    bs.breakout_invite(parent=p.room, actor=p.mod, room_id=str(room.pk), clients=p.people)
    for pid in p.people[:3]:
        bs.breakout_join(parent=p.room, participant_id=pid, room_id=str(room.pk))
    racers = p.people[3:]

    def joiner(pid: str) -> Any:
        return lambda: bs.breakout_join(parent=p.room, participant_id=pid, room_id=str(room.pk))

    results = _race([joiner(pid) for pid in racers])
    assert Counter(results) == Counter({"ok": 1, "BREAKOUT_FULL": len(racers) - 1}), results
    assert Participant.objects.filter(breakout=room).count() == 4
    assert_consistent(p.room)


def test_concurrent_moves_and_force_invites_never_exceed_capacity(sent):
    p = party(n=8)
    a, b = bs.breakout_rooms_create(parent=p.room, actor=p.mod, participants=3, max_rooms=2)
    calls = [
        lambda pid=pid: bs.breakout_move(
            parent=p.room, actor=p.mod, participant_id=pid, room_id=str(a.pk)
        )
        for pid in p.people[:5]
    ] + [
        lambda: bs.breakout_invite(
            parent=p.room, actor=p.mod, room_id=str(a.pk), clients=p.people[5:7], force_join=True
        ),
        lambda: bs.breakout_rooms_clear_all(parent=p.room, actor=p.mod),
        lambda: bs.breakout_move(
            parent=p.room, actor=p.mod, participant_id=p.people[7], room_id=str(b.pk)
        ),
    ]
    results = _race(calls)
    assert set(results) <= {"ok", "BREAKOUT_FULL"}, results
    assert Participant.objects.filter(breakout=a).count() <= 3
    assert_consistent(p.room)


def test_concurrent_creates_never_exceed_ten_rooms(sent):
    p = party(n=0)
    results = _race(
        [
            lambda: bs.breakout_rooms_create(parent=p.room, actor=p.mod, participants=2,
                                             max_rooms=3)
            for _ in range(6)
        ]
    )  # fmt: skip
    assert Counter(results) == Counter({"ok": 3, "BREAKOUT_LIMIT": 3}), results
    numbers = sorted(
        n or 0 for n in Room.objects.filter(parent=p.room).values_list("number", flat=True)
    )
    assert numbers == list(range(1, 10))
