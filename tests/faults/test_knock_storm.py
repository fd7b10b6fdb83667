"""A knock storm (issue 6, item 6): 500 guests knock on 20 rooms at once through two Daphne
processes sharing PostgreSQL and Redis, while 3 moderators per room (spread over both processes,
one of them arriving mid-storm) race to admit or deny at random, leaving some knocks pending.

What an operator would notice if it broke:
* lost knocks: every guest is told ``waiting`` once, and every decided guest exactly one outcome
  (``joined`` or ``ENTRY_DENIED``) that matches the database; the undecided are still pending;
* double decisions: each request has one terminal status, one ``resolved_by`` (the moderator
  whose ack said ``effective: true``, the only such ack), one decision in the audit trail;
* drifting dashboards: each moderator's pending list, built only from the frames it received
  (``entry-requested`` minus ``entry-resolved`` / ``entry-canceled``), equals the database's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.scale.cluster import REDIS_URL, Cluster, fresh_database, require_services
from tests.support.ws import Ws

from .helpers import close_all, db_rows, raise_fd_limit, teardown

pytestmark = [pytest.mark.slow, pytest.mark.scale]

ROOMS = 20
GUESTS_PER_ROOM = 25
MODERATORS = 3
LEFT_PENDING = 5  # per room: knocks nobody decides
OPENING = 48  # sockets being opened at once (the listen backlog is 512)
SEED = int(os.environ.get("ANTEROOM_STORM_SEED", random.randrange(2**31)))


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    require_services()
    raise_fd_limit(4096)
    with fresh_database() as url:
        c = Cluster(tmp_path, url, REDIS_URL).start(2)
        try:
            yield c
        except BaseException:
            print(f"seed {SEED}\n{c.logs_text()}", file=sys.stderr)
            raise
        finally:
            teardown(c)


@dataclass
class Guest:
    room: str
    name: str
    decide: bool
    tick: asyncio.Event  # set whenever a guest or moderator hears something
    ws: Ws | None = None
    request_id: str = ""
    told: asyncio.Event = field(default_factory=asyncio.Event)
    outcomes: list[str] = field(default_factory=list)  # "joined", error codes, "canceled"

    def hear(self, frame: dict[str, Any]) -> None:
        if frame["type"] in ("joined", "canceled"):
            self.outcomes.append(frame["type"])
        elif frame["type"] == "error":
            self.outcomes.append(frame["error"]["code"])
        else:
            return
        self.told.set()
        self.tick.set()


@dataclass
class Moderator:
    room: str
    pid: str
    token: str
    base: str
    to_decide: set[str]  # guest names this room's moderators decide
    rng: random.Random
    tick: asyncio.Event
    ws: Ws | None = None
    requested: Counter[str] = field(default_factory=Counter)
    names: dict[str, str] = field(default_factory=dict)
    resolved: Counter[str] = field(default_factory=Counter)
    canceled: set[str] = field(default_factory=set)
    sent: dict[str, tuple[str, str]] = field(default_factory=dict)  # rid -> (request, outcome)
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def pending(self) -> set[str]:
        return set(self.requested) - set(self.resolved) - self.canceled

    async def join(self) -> None:
        self.ws = await Ws.open(self.base, self.room, self.pid)
        ack = await self.ws.request("join", token=self.token, timeout=60)
        assert ack["ok"], ack
        backlog, self.ws.unread = self.ws.unread, []  # the snapshot, sent before the ack
        for frame in backlog:
            self.hear(frame)

    def hear(self, frame: dict[str, Any]) -> None:
        self.tick.set()
        kind = frame["type"]
        if kind == "entry-requested":
            rid, name = frame["request"]["id"], frame["request"]["name"]
            self.requested[rid] += 1
            self.names[rid] = name
            if name in self.to_decide and rid not in self.resolved and self.requested[rid] == 1:
                # Recorded now, so "every decision acked" cannot pass while one is being sent.
                ack_id = f"{self.pid}-{len(self.sent)}"
                self.sent[ack_id] = (rid, self.rng.choice(["admit", "deny"]))
                task = asyncio.create_task(self.decide(ack_id))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        elif kind == "entry-resolved":
            self.resolved[frame["request_id"]] += 1
        elif kind == "entry-canceled":
            self.canceled.add(frame["request_id"])
        elif kind == "ack":
            self.acks[frame["rid"]] = frame

    async def decide(self, ack_id: str) -> None:
        assert self.ws is not None
        request_id, click = self.sent[ack_id]
        await asyncio.sleep(self.rng.uniform(0, 0.03))  # clicks land in any order
        await self.ws.send(type=click, rid=ack_id, request_id=request_id)

    async def listen(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(ConnectionClosed):
            while True:
                self.hear(await self.ws.recv(3600))

    def settled(self, db_pending: set[str]) -> bool:
        return self.pending() == db_pending and set(self.acks) >= set(self.sent)


async def _guest(g: Guest, base: str, opening: asyncio.Semaphore, waited: list[Guest]) -> None:
    async with opening:
        g.ws = await Ws.open(base, g.room, g.name)
    await g.ws.send(type="join", name=g.name, rid="join")
    waiting = await g.ws.expect("waiting", timeout=90)
    ack = await g.ws.expect("ack", timeout=30, rid="join")
    assert ack["ok"] and ack["data"]["request_id"] == waiting["request"]["id"], ack
    g.request_id = waiting["request"]["id"]
    waited.append(g)
    g.tick.set()
    for frame in g.ws.unread:
        g.hear(frame)
    g.ws.unread = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            g.hear(await g.ws.recv(3600))


async def test_500_knocks_20_rooms_3_racing_moderators_lose_nothing(cluster):
    rng = random.Random(SEED)
    tick = asyncio.Event()
    a, b = cluster.bases
    rooms = [f"storm{r:02d}" for r in range(ROOMS)]
    guests: list[Guest] = []
    mods: list[Moderator] = []
    for r, room in enumerate(rooms):
        await asyncio.to_thread(cluster.room, room, knock_ttl=600)
        names = [f"{room}-g{n:02d}" for n in range(GUESTS_PER_ROOM)]
        decide = set(names) - set(rng.sample(names, LEFT_PENDING))
        guests += [Guest(room, name, name in decide, tick) for name in names]
        for m in range(MODERATORS):
            pid = f"{room}-m{m}"
            tok = await asyncio.to_thread(cluster.token, room, is_owner=True, user_id=pid)
            base = cluster.bases[(r + m) % 2]
            mods.append(Moderator(room, pid, tok, base, decide, random.Random(rng.random()), tick))
    early = [m for m in mods if not m.pid.endswith(f"-m{MODERATORS - 1}")]
    late = [m for m in mods if m.pid.endswith(f"-m{MODERATORS - 1}")]
    rng.shuffle(guests)  # knocks of all rooms interleave

    tasks: list[asyncio.Task[None]] = []
    waited: list[Guest] = []
    try:
        async with asyncio.timeout(150):
            await asyncio.gather(*(m.join() for m in early))
            tasks += [asyncio.create_task(m.listen()) for m in early]
            opening = asyncio.Semaphore(OPENING)
            guest_tasks = [
                asyncio.create_task(_guest(g, (a, b)[i % 2], opening, waited))
                for i, g in enumerate(guests)
            ]
            tasks += guest_tasks
            for t in guest_tasks:
                t.add_done_callback(lambda _: tick.set())

            async def until(condition: Callable[[], bool]) -> None:
                """Wait for ``condition`` (re-checked whenever a socket hears something); a
                guest that failed to knock fails the test at once."""
                while True:
                    tick.clear()
                    for t in guest_tasks:
                        if t.done() and not t.cancelled() and t.exception() is not None:
                            t.result()
                    if condition():
                        return
                    await tick.wait()

            # The third moderator of each room arrives mid-storm and gets a snapshot.
            await until(lambda: len(waited) >= len(guests) // 2)
            await asyncio.gather(*(m.join() for m in late))
            tasks += [asyncio.create_task(m.listen()) for m in late]
            await until(lambda: len(waited) == len(guests))

            # Every decided guest is told, then the database is final.
            await until(lambda: all(g.told.is_set() for g in guests if g.decide))
            rows = await asyncio.to_thread(db_rows, cluster.env["DATABASE_URL"], _REQUESTS)
            db: dict[str, tuple[str, str, str, str, str]] = {str(r[0]): r[1:] for r in rows}
            db_pending = {
                room: {i for i, r in db.items() if r[0] == room and r[2] == "pending"}
                for room in rooms
            }
            # Each moderator's list converges on the database's (frames still in flight land).
            await until(lambda: all(m.settled(db_pending[m.room]) for m in mods))
    except TimeoutError:
        raise AssertionError(_progress(guests, waited, mods)) from None
    finally:
        for t in tasks:
            t.cancel()
        close_all([g.ws for g in guests if g.ws] + [m.ws for m in mods if m.ws])

    _check(guests, mods, db, cluster)


_REQUESTS = """
    SELECT e.id, r.name, e.name, e.status, e.cancel_reason, e.resolved_by
    FROM lobby_entryrequest e JOIN lobby_room r ON r.id = e.room_id
"""
_DECISIONS = """
    SELECT request_id, count(*) FROM lobby_auditevent
    WHERE action IN ('admitted', 'denied') GROUP BY request_id
"""


def _progress(guests: list[Guest], waited: list[Guest], mods: list[Moderator]) -> str:
    untold = [g.name for g in guests if g.decide and not g.told.is_set()]
    unacked = {m.pid: len(set(m.sent) - set(m.acks)) for m in mods if set(m.sent) - set(m.acks)}
    return (
        f"seed {SEED}: {len(waited)}/{len(guests)} waiting; {len(untold)} decided guests "
        f"untold {untold[:5]}; unacked decisions {unacked}"
    )


def _check(
    guests: list[Guest],
    mods: list[Moderator],
    db: dict[str, tuple[str, str, str, str, str]],
    cluster: Cluster,
) -> None:
    # 0 lost, 0 duplicated: one row per guest, under the id the guest was given.
    assert len(db) == len(guests) == ROOMS * GUESTS_PER_ROOM
    by_guest = {(r[0], r[1]): i for i, r in db.items()}
    assert len(by_guest) == len(db), "a guest has two knocks"
    for g in guests:
        assert by_guest[(g.room, g.name)] == g.request_id, g.name
        assert g.ws is not None
        assert [f["type"] for f in g.ws.seen].count("waiting") == 1, g.name

    acks: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for m in mods:
        for rid, (request_id, _) in m.sent.items():
            acks.setdefault(request_id, []).append((m.pid, m.acks[rid]))
    audit = dict(db_rows(cluster.env["DATABASE_URL"], _DECISIONS))
    audit = {str(k): v for k, v in audit.items()}
    room_mods: dict[str, set[str]] = {m.room: set() for m in mods}
    for m in mods:
        room_mods[m.room].add(m.pid)
    statuses: Counter[str] = Counter()
    for g in guests:
        room, name, status, cancel_reason, resolved_by = db[g.request_id]
        statuses[status] += 1
        if not g.decide:
            assert (status, g.outcomes, acks.get(g.request_id)) == ("pending", [], None), name
            continue
        # Exactly one decision: one terminal status, by the one moderator whose ack won.
        assert status in ("admitted", "denied"), (name, status, cancel_reason)
        assert resolved_by in room_mods[room], (name, resolved_by)
        mine = acks[g.request_id]
        winners = [pid for pid, ack in mine if ack["ok"] and ack["data"]["effective"]]
        assert winners == [resolved_by], (name, mine)
        assert {ack["data"]["outcome"] for _, ack in mine} == {status}, (name, mine)
        assert audit.get(g.request_id) == 1, (name, audit.get(g.request_id))
        # Told once, and told the truth.
        assert g.outcomes == ["joined" if status == "admitted" else "ENTRY_DENIED"], (name, g)
    assert statuses["canceled"] == 0, statuses
    assert statuses["pending"] == ROOMS * LEFT_PENDING, statuses
    assert statuses["admitted"] > 0 and statuses["denied"] > 0, statuses

    for m in mods:
        # The moderators' lists equal the database's (the loop above waited for it).
        want = {i for i, r in db.items() if r[0] == m.room and r[2] == "pending"}
        assert m.pending() == want, m.pid
        assert max(m.resolved.values(), default=1) == 1, (m.pid, "told of a decision twice")
        if m.pid.endswith(f"-m{MODERATORS - 1}"):
            continue
        # Present from the start: every knock of its room once, every decision once.
        knocks = {i for i, r in db.items() if r[0] == m.room}
        assert set(m.requested) == knocks and set(m.requested.values()) == {1}, m.pid
        assert set(m.resolved) == knocks - want, m.pid
