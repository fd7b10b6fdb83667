"""A hypothesis state machine over the breakout services, with a model of what should be true.

Each rule predicts its outcome from the model — success, or the exact error code — and checks
that a refused call changed nothing and told nobody, and that a successful one told every moved
participant (``breakout-joined`` / ``breakout-left``). After every step the invariants hold:
at most 10 rooms, no room over capacity, paused in the parent ⇔ in a breakout, and the database
agrees with the model (so nobody is stranded after clear, destroy or a timer).
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from breakouts import services as bs
from breakouts.models import BreakoutInvitation
from breakouts.services import assignment
from lobby import clock, events, services
from lobby.errors import AnteroomError
from lobby.models import Participant, Role, Room

PEOPLE = ["p0", "p1", "p2", "p3", "p4", "p5"]
EVERYONE = ["mod", *PEOPLE, "v0", "ghost"]  # "ghost" is never present
TALKERS = 6  # capacities 2..5 are valid

Pair = tuple[str, str]  # (room id, participant id)


class BreakoutMachine(RuleBasedStateMachine):
    sent: Any = None  # the test's event capture

    def __init__(self) -> None:
        super().__init__()
        assignment._rng.seed(0)  # a seeded stand-in for SystemRandom (see the test): replays alike
        Room.objects.all().delete()
        self.parent = services.room_create(
            actor=services.Actor.command("tests"), name="machine", max_active_talkers=TALKERS
        )
        for pid in EVERYONE[:-1]:
            self._present(pid)
        self.mod = services.Actor(by="mod", can_moderate=True, participant_id="mod")
        self.present = set(EVERYONE[:-1])
        self.where: dict[str, str | None] = dict.fromkeys(EVERYONE[:-1])
        self.rooms: dict[str, int] = {}  # room id -> capacity
        self.ends: dict[str, datetime | None] = {}
        self.ever: list[str] = []  # every room id ever created (destroyed ones stay)
        self.pending: set[Pair] = set()
        self.accepted: set[Pair] = set()

    # Helpers ---------------------------------------------------------------------------------

    def _present(self, pid: str) -> None:
        role = {"mod": Role.MODERATOR, "v0": Role.VIEWER}.get(pid, Role.PARTICIPANT)
        Participant.objects.update_or_create(
            room=self.parent,
            participant_id=pid,
            defaults={"name": pid, "role": role, "status": "active", "breakout": None,
                      "connected_at": clock.now(), "left_at": None},
        )  # fmt: skip

    def _room(self, i: int) -> str:
        """Mostly a current room; sometimes a destroyed one or one that never existed."""
        if i < 10 and self.rooms:
            return list(self.rooms)[i % len(self.rooms)]
        if i == 10 and self.ever:
            return self.ever[0]
        return str(uuid.UUID(int=i))

    def _members(self, rid: str) -> int:
        return sum(1 for w in self.where.values() if w == rid)

    def _db(self) -> tuple[Any, ...]:
        return (
            sorted(
                Participant.objects.filter(room=self.parent).values_list(
                    "participant_id", "status", "breakout_id"
                )
            ),
            sorted(Room.objects.filter(parent=self.parent).values_list("pk", "ends_at")),
            sorted(
                BreakoutInvitation.objects.values_list("breakout_id", "participant_id", "status")
            ),
            Room.objects.filter(pk=self.parent.pk)
            .values_list("paused", "audio_muted", "video_muted")
            .get(),
        )

    def _attempt(self, expected: str | None, fn: Any, **kw: Any) -> Any:
        """Call a service; it must fail with ``expected`` (changing nothing, telling nobody) or,
        if ``expected`` is None, succeed and tell every participant whose room changed."""
        before, where = self._db(), dict(self._db_where())
        self.sent.items.clear()
        try:
            result = fn(parent=self.parent, **kw)
        except AnteroomError as exc:
            assert exc.code == expected, (fn.__name__, kw, exc.code, expected)
            assert self._db() == before, fn.__name__
            assert self.sent.items == [], fn.__name__
            return None
        assert expected is None, (fn.__name__, kw, "succeeded; expected", expected)
        after = self._db_where()
        for pid, old in where.items():
            new = after.get(pid)
            if new == old:
                continue
            told = [
                f
                for f in self.sent.frames(events.participant_group(self.parent.pk, pid))
                if f["type"].startswith("breakout-")
            ]
            last = told[-1]
            if new is None:
                assert last["type"] == "breakout-left" and last["room_id"] == old, told
            else:
                assert last["type"] == "breakout-joined" and last["room"]["id"] == new, told
                assert pid in {m["participant_id"] for m in last["room"]["members"]}
        return result

    def _db_where(self) -> dict[str, str | None]:
        return {
            pid: str(b) if b else None
            for pid, b in Participant.objects.filter(room=self.parent)
            .exclude(status="left")
            .values_list("participant_id", "breakout_id")
        }

    def _in_breakout(self, pid: str) -> bool:
        return self.where.get(pid) is not None

    def _enter(self, rid: str, pid: str) -> None:
        self.where[pid] = rid

    def _return_all(self, rooms: set[str] | None = None) -> None:
        for pid, w in self.where.items():
            if w is not None and (rooms is None or w in rooms):
                self.where[pid] = None

    # Rules -----------------------------------------------------------------------------------

    @rule(
        capacity=st.sampled_from([2, 2, 2, 3, 5, 1, TALKERS]),
        count=st.sampled_from([1, 1, 2, 3, 10, 11]),
        duration=st.sampled_from([None, None, 60, 120, 600]),
    )
    def create(self, capacity: int, count: int, duration: int | None) -> None:
        expected = None
        if not 2 <= capacity <= TALKERS - 1:
            expected = "BREAKOUT_INVALID_SIZE"
        elif count > 10:
            expected = "BREAKOUT_LIMIT"
        elif self._in_breakout("mod"):
            expected = "BREAKOUT_FROM_BREAKOUT"
        elif len(self.rooms) + count > 10:
            expected = "BREAKOUT_LIMIT"
        rooms = self._attempt(
            expected,
            bs.breakout_rooms_create,
            actor=self.mod,
            participants=capacity,
            max_rooms=count,
            duration=duration,
        )
        for r in rooms or []:
            self.rooms[str(r.pk)] = capacity
            self.ends[str(r.pk)] = r.ends_at
            self.ever.append(str(r.pk))

    @rule(capacity=st.sampled_from([2, 2, 3, 5]), max_rooms=st.integers(1, 10), force=st.booleans())
    def create_and_invite(self, capacity: int, max_rooms: int, force: bool) -> None:
        spread = [p for p in PEOPLE if p in self.present and self.where[p] is None]
        need = max(1, math.ceil(len(spread) / capacity))
        expected = None
        if self._in_breakout("mod"):
            expected = "BREAKOUT_FROM_BREAKOUT"
        elif len(self.rooms) + need > 10:
            expected = "BREAKOUT_LIMIT"
        elif need > max_rooms:
            expected = "BREAKOUT_INVALID_SIZE"
        out = self._attempt(
            expected,
            bs.breakout_rooms_create_and_invite,
            actor=self.mod,
            participants=capacity,
            max_rooms=max_rooms,
            force_join=force,
        )
        if out is None:
            return
        rooms, assignments = out
        assert len(rooms) == need
        assert sorted(p for ids in assignments.values() for p in ids) == sorted(spread)
        sizes = [len(ids) for ids in assignments.values()]
        assert max(sizes) - min(sizes) <= 1 and max(sizes) <= capacity
        for r in rooms:
            rid = str(r.pk)
            self.rooms[rid], self.ends[rid] = capacity, None
            self.ever.append(rid)
            for pid in assignments[rid]:
                if force:
                    self.accepted.add((rid, pid))
                    self._enter(rid, pid)
                else:
                    self.pending.add((rid, pid))

    @rule(
        i=st.integers(0, 11),
        clients=st.lists(st.sampled_from(EVERYONE), min_size=1, max_size=4, unique=True),
        force=st.booleans(),
    )
    def invite(self, i: int, clients: list[str], force: bool) -> None:
        self._invite(self._room(i), clients, force)

    def _invite(self, rid: str, clients: list[str], force: bool) -> None:
        movers = [p for p in clients if self.where.get(p) != rid]
        expected = None
        if rid not in self.rooms:
            expected = "BREAKOUT_NOT_FOUND"
        elif any(p not in self.present for p in clients):
            expected = "NOT_FOUND"
        elif force and self._members(rid) + len(movers) > self.rooms[rid]:
            expected = "BREAKOUT_FULL"
        done = self._attempt(
            expected, bs.breakout_invite, actor=self.mod, room_id=rid, clients=clients,
            force_join=force,
        )  # fmt: skip
        if done is None:
            return
        assert done.clients == movers
        for pid in movers:
            if force:
                self.pending.discard((rid, pid))
                self.accepted.add((rid, pid))
                self._enter(rid, pid)
            else:
                self.pending.add((rid, pid))

    @rule(who=st.sampled_from(EVERYONE), i=st.integers(0, 11))
    def join(self, who: str, i: int) -> None:
        self._join(who, self._room(i))

    @precondition(lambda self: bool(self._invitees()))
    @rule(data=st.data())
    def accept_an_invitation(self, data: st.DataObject) -> None:
        rid, who = data.draw(st.sampled_from(self._invitees()))
        self._join(who, rid)

    @precondition(lambda self: bool(self.rooms))
    @rule(data=st.data())
    def moderator_visits(self, data: st.DataObject) -> None:
        self._join("mod", data.draw(st.sampled_from(list(self.rooms))))

    @precondition(lambda self: bool(self.rooms))
    @rule(
        data=st.data(),
        clients=st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=3, unique=True),
    )
    def invite_to_a_room(self, data: st.DataObject, clients: list[str]) -> None:
        self._invite(data.draw(st.sampled_from(list(self.rooms))), clients, force=False)

    def _invitees(self) -> list[Pair]:
        # In creation order (never by uuid), so that replays draw alike.
        order = {rid: n for n, rid in enumerate(self.ever)}
        return sorted(
            (
                (rid, pid)
                for rid, pid in self.pending | self.accepted
                if rid in self.rooms and pid in self.present and self.where[pid] != rid
            ),
            key=lambda pair: (order[pair[0]], pair[1]),
        )

    def _join(self, who: str, rid: str) -> None:
        expected = None
        if rid not in self.rooms:
            expected = "BREAKOUT_NOT_FOUND"
        elif who not in self.present:
            expected = "NOT_FOUND"
        elif self.where[who] == rid:
            expected = None
        elif self.where[who] is not None:
            expected = "ALREADY_IN_BREAKOUT"
        elif who != "mod" and not ({(rid, who)} & (self.pending | self.accepted)):
            expected = "NOT_INVITED"
        elif self._members(rid) >= self.rooms[rid]:
            expected = "BREAKOUT_FULL"
        done = self._attempt(expected, bs.breakout_join, participant_id=who, room_id=rid)
        if done is not None and self.where[who] != rid:
            if (rid, who) in self.pending or who != "mod":
                self.pending.discard((rid, who))
                self.accepted.add((rid, who))
            self._enter(rid, who)

    @rule(who=st.sampled_from(EVERYONE), i=st.integers(0, 11))
    def reject(self, who: str, i: int) -> None:
        rid = self._room(i)
        expected = None
        if rid not in self.rooms:
            expected = "BREAKOUT_NOT_FOUND"
        elif (rid, who) not in self.pending:
            expected = "NOT_INVITED"
        if self._attempt(expected, bs.breakout_reject, participant_id=who, room_id=rid):
            self.pending.discard((rid, who))

    @rule(who=st.sampled_from(EVERYONE))
    def leave(self, who: str) -> None:
        expected = None
        if who not in self.present:
            expected = "NOT_FOUND"
        elif self.where[who] is None:
            expected = "NOT_IN_BREAKOUT"
        if self._attempt(expected, bs.breakout_leave, participant_id=who):
            self.where[who] = None

    @rule(who=st.sampled_from(EVERYONE), i=st.integers(0, 12))
    def move(self, who: str, i: int) -> None:
        self._move(who, None if i == 12 else self._room(i))

    @precondition(lambda self: bool(self.rooms))
    @rule(data=st.data())
    def move_someone_present(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from(sorted(self.present)))
        self._move(who, data.draw(st.sampled_from([*self.rooms, None])))

    def _move(self, who: str, rid: str | None) -> None:
        expected = None
        if who not in self.present:
            expected = "NOT_FOUND"
        elif rid is None:
            expected = "NOT_IN_BREAKOUT" if self.where[who] is None else None
        elif rid not in self.rooms:
            expected = "BREAKOUT_NOT_FOUND"
        elif self.where[who] != rid and self._members(rid) >= self.rooms[rid]:
            expected = "BREAKOUT_FULL"
        done = self._attempt(
            expected, bs.breakout_move, actor=self.mod, participant_id=who, room_id=rid
        )
        if done is None:
            return
        if rid is None:
            self.where[who] = None
        elif self.where[who] != rid:
            self.pending.discard((rid, who))
            self.accepted.add((rid, who))
            self._enter(rid, who)

    @precondition(lambda self: bool(self.rooms))
    @rule()
    def clear_all(self) -> None:
        self._attempt(None, bs.breakout_rooms_clear_all, actor=self.mod)
        self._return_all()
        self.ends = dict.fromkeys(self.ends)
        assert not Participant.objects.filter(breakout__isnull=False).exists()

    @precondition(lambda self: len(self.rooms) >= 3 or any(self.where.values()))
    @rule()
    def destroy_all(self) -> None:
        self._attempt(None, bs.breakout_rooms_destroy_all, actor=self.mod)
        self._return_all()
        self.rooms.clear()
        self.ends.clear()
        self.pending.clear()
        self.accepted.clear()
        parent = Room.objects.get(pk=self.parent.pk)
        assert not (parent.paused or parent.audio_muted or parent.video_muted)
        assert not Room.objects.filter(parent=self.parent).exists()

    @rule(paused=st.booleans(), audio=st.booleans(), video=st.booleans())
    def room_state(self, paused: bool, audio: bool, video: bool) -> None:
        services.room_set_state(
            room=self.parent, actor=self.mod, paused=paused, audio_muted=audio, video_muted=video
        )

    @rule(who=st.sampled_from(PEOPLE))
    def leave_the_room(self, who: str) -> None:
        services.participant_leave(room=self.parent, participant_id=who)
        self.present.discard(who)
        self.where.pop(who, None)

    @rule(who=st.sampled_from(PEOPLE))
    def join_again(self, who: str) -> None:
        """A fresh join (no resume key) starts in the parent."""
        plan = services.JoinPlan(
            room=self.parent, level="full", role=Role.PARTICIPANT, participant_id=who, name=who,
            claims=None,
        )  # fmt: skip
        conn = services.Connection(server_id="machine", connection_id=uuid.uuid4().hex)
        services.participant_join(plan=plan, conn=conn)
        self.present.add(who)
        self.where[who] = None

    @rule(i=st.integers(0, 12), seconds=st.sampled_from([30, 300]))
    def extend(self, i: int, seconds: int) -> None:
        rid = None if i == 12 else self._room(i)
        expected = None
        if rid is not None and rid not in self.rooms:
            expected = "BREAKOUT_NOT_FOUND"
        elif rid is not None and self.ends[rid] is None:
            expected = "BAD_REQUEST"
        rooms = self._attempt(
            expected, bs.breakout_extend, actor=self.mod, room_id=rid, seconds=seconds
        )
        if rooms is None:
            return
        timed = {r for r, e in self.ends.items() if e is not None} if rid is None else {rid}
        assert {str(r.pk) for r in rooms} == timed
        for r in rooms:
            self.ends[str(r.pk)] = r.ends_at

    @rule(seconds=st.sampled_from([20, 61, 130, 700]))
    def time_passes(self, seconds: int) -> None:
        clock.advance(seconds)
        now = clock.now()
        self.sent.items.clear()
        services.sweep()
        services.sweep()  # idempotent
        over = {r for r, e in self.ends.items() if e is not None and e <= now}
        for rid in over:
            self.ends[rid] = None
            told = [pid for pid, w in self.where.items() if w == rid]
            for pid in told:
                frames = self.sent.frames(events.participant_group(self.parent.pk, pid))
                assert {"type": "breakout-left", "room_id": rid, "reason": "timer"} in frames
        self._return_all(over)
        endings = [f for f in self.sent.frames() if f["type"] == "breakout-ending"]
        assert len(endings) == len({f["room_id"] for f in endings})  # one warning per room

    # Invariants ------------------------------------------------------------------------------

    @invariant()
    def database_agrees_with_the_model(self) -> None:
        assert self._db_where() == {p: w for p, w in self.where.items() if p in self.present}
        assert {
            str(r) for r in Room.objects.filter(parent=self.parent).values_list("pk", flat=True)
        } == set(self.rooms)

    @invariant()
    def rules_hold(self) -> None:
        rooms = list(Room.objects.filter(parent=self.parent))
        assert len(rooms) <= 10
        for r in rooms:
            n = Participant.objects.filter(breakout=r).exclude(status="left").count()
            assert r.capacity is not None and n <= r.capacity
        for p in Participant.objects.filter(room=self.parent):
            if p.status == "left":
                assert p.breakout_id is None
            else:
                assert (p.status == "paused") == (p.breakout_id is not None), p

    @invariant()
    def timers_are_in_the_future_or_unset(self) -> None:
        for rid, ends in self.ends.items():
            if ends is not None:
                assert ends > clock.now() - timedelta(seconds=1), rid


@pytest.mark.django_db(transaction=True)
def test_breakout_state_machine(sent, monkeypatch):
    BreakoutMachine.sent = sent
    monkeypatch.setattr(assignment, "_rng", random.Random())
    run_state_machine_as_test(
        BreakoutMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
