"""First decision wins, under real concurrency.

In-process asyncio does not race (``database_sync_to_async`` runs every ORM call of a process on
one thread), so these tests start real threads, line them up on a ``threading.Barrier`` and let
them call the services at once against the file database (SQLite here, PostgreSQL in the second
pass of the test command). Each thread uses, then closes, its own connection.

On SQLite every write transaction starts with BEGIN IMMEDIATE, so these threads are serialised by
the database itself; on PostgreSQL (READ COMMITTED) they really interleave, and a check-then-write
``_finish`` or a knock without the room lock fails these tests there (checked by mutation).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from lobby import clock, events, services
from lobby.errors import EntryRateLimited
from lobby.models import EntryRequest, Participant, Room
from tests import factories
from tests.factories import make_room, make_token
from tests.support.events import Sent
from tests.support.threads import at_once

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


def knock(room: Room, name: str, *, token: str | None = None, browser: str = "", address: str = ""):
    return factories.knock(
        room, name=name, token=token, c=factories.conn("s", browser=browser, address=address)
    )


@pytest.fixture
def clinic(db) -> Room:
    return make_room("clinic", privacy="private", enable_knocking=True)


def resolved(sent: Sent, room: Room) -> list[dict[str, Any]]:
    return [f for f in sent.frames(events.mods_group(room.pk)) if f["type"] == "entry-resolved"]


@pytest.mark.parametrize("round_", range(3))
def test_eight_moderators_decide_one_request_at_once(clinic, sent, round_):
    r = knock(clinic, "Pat", browser="pat").request
    sent.items.clear()

    def decide(i: int) -> services.Decision:
        return services.entry_request_decide(
            room=clinic,
            request_id=r.id,
            actor=services.Actor.api(f"mod{i}"),
            outcome="admitted" if i % 2 == 0 else "denied",
        )

    results = at_once(THREADS, decide)
    assert all(isinstance(d, services.Decision) for d in results), results
    winners = [d for d in results if d.effective]
    assert len(winners) == 1
    final = EntryRequest.objects.get(pk=r.id)
    assert final.status == winners[0].outcome
    assert final.resolved_by == winners[0].request.resolved_by
    # Every loser was told the winning outcome.
    assert {d.outcome for d in results} == {final.status}
    # Moderators heard exactly one entry-resolved; the guest exactly one message.
    [frame] = resolved(sent, clinic)
    assert (frame["outcome"], frame["by"]) == (final.status, final.resolved_by)
    to_guest = sent.to(events.request_group(r.id))
    assert len(to_guest) == 1
    if final.status == "admitted":
        assert to_guest[0]["frames"][0]["type"] == "joined"
        assert Participant.objects.filter(participant_id=r.participant_id).count() == 1
        assert sent.types(events.members_group(clinic.pk)) == ["participant-joined"]
    else:
        assert to_guest[0]["frames"][0]["error"]["code"] == "ENTRY_DENIED"
        assert not Participant.objects.filter(participant_id=r.participant_id).exists()
        assert sent.types(events.members_group(clinic.pk)) == []


@pytest.mark.parametrize("round_", range(2))
def test_admit_all_and_single_decisions_race_without_double_decisions(clinic, sent, round_):
    """Also a deadlock check: on PostgreSQL, admit-all's room lock once blocked the FK check of
    a single admit's new participant row while it waited for that admit's request row."""
    requests = [knock(clinic, f"G{i}", browser=f"b{i}").request for i in range(5)]
    sent.items.clear()

    def act(i: int) -> int:
        actor = services.Actor.api(f"mod{i}")
        if i % 2 == 0:
            outcome = "admitted" if i % 4 == 0 else "denied"
            return services.entry_requests_decide_all(room=clinic, actor=actor, outcome=outcome)
        d = services.entry_request_decide(
            room=clinic, request_id=requests[i % 5].id, actor=actor, outcome="admitted"
        )
        return int(d.effective)

    results = at_once(THREADS, act)
    assert all(isinstance(n, int) for n in results), results
    assert sum(results) == 5  # each request decided once, by exactly one caller
    frames = resolved(sent, clinic)
    assert Counter(f["request_id"] for f in frames) == Counter(str(r.id) for r in requests)
    rows = {str(r.id): r for r in EntryRequest.objects.all()}
    for f in frames:
        assert (f["outcome"], f["by"]) == (
            rows[f["request_id"]].status,
            rows[f["request_id"]].resolved_by,
        )
    for r in requests:
        assert len(sent.to(events.request_group(r.id))) == 1
    admitted = [r for r in rows.values() if r.status == "admitted"]
    assert Participant.objects.count() == len(admitted)
    assert len(sent.frames(events.members_group(clinic.pk))) == len(admitted)


def test_guest_cancel_and_moderator_admit_race(clinic, sent):
    r = knock(clinic, "Pat", browser="pat").request
    sent.items.clear()

    def act(i: int) -> bool:
        if i % 2:
            return services.entry_request_cancel(room=clinic, request_id=r.id)
        d = services.entry_request_decide(
            room=clinic, request_id=r.id, actor=services.Actor.api(f"m{i}"), outcome="admitted"
        )
        return d.effective

    results = at_once(THREADS, act)
    assert results.count(True) == 1, results
    final = EntryRequest.objects.get(pk=r.id)
    mod_types = sent.types(events.mods_group(clinic.pk))
    assert mod_types == ["entry-resolved"] if final.status == "admitted" else ["entry-canceled"]
    assert len(sent.to(events.request_group(r.id))) == 1
    assert Participant.objects.count() == (final.status == "admitted")


def test_sweepers_and_late_admits_at_the_deadline(clinic, sent):
    r = knock(clinic, "Pat", browser="pat").request
    clock.advance(61)
    sent.items.clear()

    def act(i: int) -> Any:
        if i % 2:
            return services.sweep().timed_out
        return services.entry_request_decide(
            room=clinic, request_id=r.id, actor=services.Actor.api(f"m{i}"), outcome="admitted"
        )

    results = at_once(THREADS, act)
    assert not any(isinstance(x, BaseException) for x in results), results
    assert not any(isinstance(x, services.Decision) and x.effective for x in results)
    final = EntryRequest.objects.get(pk=r.id)
    assert (final.status, final.cancel_reason) == ("canceled", "timeout")
    assert sent.frames(events.mods_group(clinic.pk)) == [
        {"type": "entry-canceled", "request_id": str(r.id), "reason": "timeout"}
    ]
    [m] = sent.to(events.request_group(r.id))
    assert m["close_code"] == 4408
    assert not Participant.objects.exists()


def test_concurrent_knocks_with_one_token_never_exceed_the_limit(clinic, sent):
    token = make_token(room="clinic", join_policy={"mode": "ask"})

    def act(i: int) -> Any:
        # Different sockets, browsers and addresses: only the token ties them together.
        return knock(clinic, f"try {i}", token=token, browser=f"b{i}", address=f"10.0.0.{i}")

    results = at_once(THREADS, act)
    ok = [x for x in results if isinstance(x, services.Waiting)]
    limited = [x for x in results if isinstance(x, EntryRateLimited)]
    assert (len(ok), len(limited)) == (3, THREADS - 3), results
    assert EntryRequest.objects.count() == 3
    assert len([f for f in sent.frames(events.mods_group(clinic.pk))]) == 3


def test_concurrent_knocks_from_one_browser_never_exceed_the_limit(clinic, sent):
    results = at_once(THREADS, lambda i: knock(clinic, f"try {i}", browser="same-browser"))
    assert sum(isinstance(x, services.Waiting) for x in results) == 3
    assert sum(isinstance(x, EntryRateLimited) for x in results) == THREADS - 3
    assert EntryRequest.objects.count() == 3


def test_a_burst_from_one_address_stops_at_thirty(clinic, sent):
    n = 36
    results = at_once(n, lambda i: knock(clinic, f"g{i}", browser=f"b{i}", address="192.0.2.9"))
    assert sum(isinstance(x, services.Waiting) for x in results) == 30
    assert sum(isinstance(x, EntryRateLimited) for x in results) == n - 30
    assert EntryRequest.objects.count() == 30


def test_first_joins_with_one_id_at_once_leave_one_presence(sent):
    """Several tabs opening with the same personal token at the same moment: every join
    succeeds (the later ones replace the earlier presence) and one presence remains."""
    room = make_room("tabs")
    token = make_token(room="tabs", sub="same-person", name="Sam")

    def join(i: int) -> str:
        plan = services.join_plan(room_name="tabs", token=token)
        conn = services.Connection(server_id="s", connection_id=f"c{i}")
        return services.participant_join(plan=plan, conn=conn).participant.participant_id

    results = at_once(THREADS, join)
    assert results == ["same-person"] * THREADS, results  # no IntegrityError in any thread
    assert Participant.objects.filter(room=room, participant_id="same-person").count() == 1
