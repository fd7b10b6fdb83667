"""The estimated wait: queue position times the room's recent median time to admit, said only when
there are enough recent admissions."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lobby import analytics, clock, services
from tests.factories import conn, knock, make_room, moderator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clinic(db):
    return make_room("clinic", privacy="private", enable_knocking=True, knock_ttl=600)


def admit_after(room, dr, seconds: int, n: int) -> None:
    for i in range(n):
        w = knock(room, name=f"G{i}", c=conn(browser=f"b{seconds}-{i}"))
        clock.advance(seconds)
        services.entry_request_decide(
            room=room, request_id=w.request.id, actor=dr, outcome="admitted"
        )


def test_no_estimate_until_five_recent_admissions(clinic):
    dr = moderator(clinic)
    assert analytics.recent_time_to_admit(room=clinic) is None
    admit_after(clinic, dr, 30, 4)
    assert analytics.recent_time_to_admit(room=clinic) is None
    admit_after(clinic, dr, 90, 1)
    assert analytics.recent_time_to_admit(room=clinic) == pytest.approx(
        30, abs=1
    )  # of 30,30,30,30,90


def test_only_the_last_two_hours_count(clinic):
    dr = moderator(clinic)
    admit_after(clinic, dr, 600, 5)
    clock.advance(2 * 3600 + 1)
    assert analytics.recent_time_to_admit(room=clinic) is None
    admit_after(clinic, dr, 20, 5)
    assert analytics.recent_time_to_admit(room=clinic) == pytest.approx(20, abs=1)


def test_denials_and_other_rooms_do_not_count(clinic):
    dr = moderator(clinic)
    other = make_room("other", privacy="private", enable_knocking=True)
    admit_after(other, moderator(other, sub="dr2"), 10, 5)
    for i in range(5):
        w = knock(clinic, name=f"D{i}", c=conn(browser=f"d{i}"))
        services.entry_request_decide(
            room=clinic, request_id=w.request.id, actor=dr, outcome="denied"
        )
    assert analytics.recent_time_to_admit(room=clinic) is None


async def test_a_knock_gets_the_estimate_only_with_enough_data(clients):
    from tests.lobby.helpers import adb, aroom

    room = await aroom(name="clinic", privacy="private", enable_knocking=True, knock_ttl=600)
    first = await clients(client=("10.0.0.1", 4000))
    await first.send(type="join", name="Early")
    await first.expect("waiting")
    await first.expect("queue-position")
    while not await first.nothing(0.3):
        await first.recv()
    assert "wait-estimate" not in {f["type"] for f in first.seen}

    dr = await adb(moderator)(room)
    await adb(admit_after)(room, dr, 120, 5)
    later = await clients(client=("10.0.0.2", 4000))
    await later.send(type="join", name="Later")
    await later.expect("waiting")
    est = await later.expect("wait-estimate")
    assert est == {"type": "wait-estimate", "seconds_per_guest": 120}


# The estimate's cache (lobby/cache.py: the embedded default only) ----------------------------

embedded_only = pytest.mark.skipif(
    bool(os.environ.get("REDIS_URL")), reason="lobby.cache is on only with the in-memory layer"
)


def estimate_queries(room) -> tuple[float | None, int]:
    with CaptureQueriesContext(connection) as ctx:
        value = analytics.recent_time_to_admit(room=room)
    return value, len(ctx.captured_queries)


@embedded_only
def test_every_knock_reads_the_estimate_but_only_an_admission_changes_it(clinic):
    dr = moderator(clinic)
    assert estimate_queries(clinic) == (None, 1)
    assert estimate_queries(clinic) == (None, 0)  # too few: stays so until an admission
    admit_after(clinic, dr, 30, 5)
    assert estimate_queries(clinic) == (pytest.approx(30, abs=1), 1)
    assert estimate_queries(clinic) == (pytest.approx(30, abs=1), 0)
    knock(clinic, name="Not yet", c=conn(browser="x"))  # a knock does not change it
    assert estimate_queries(clinic)[1] == 0
    admit_after(clinic, dr, 90, 6)  # 5 of 30 s, 6 of 90 s: the median moves
    assert estimate_queries(clinic) == (pytest.approx(90, abs=1), 1)


@embedded_only
def test_a_kept_estimate_ends_when_its_oldest_admission_leaves_the_window(clinic):
    from lobby.models import EntryRequest

    dr = moderator(clinic)
    admit_after(clinic, dr, 500, 5)  # slow at first...
    clock.advance(3600)
    admit_after(clinic, dr, 20, 4)  # ...then quick
    assert analytics.recent_time_to_admit(room=clinic) == pytest.approx(500, abs=1)
    first = EntryRequest.objects.filter(status="admitted").order_by("resolved_at")[0]
    assert first.resolved_at is not None
    leaves = first.resolved_at + timedelta(seconds=analytics.ESTIMATE_WINDOW)
    clock.advance((leaves - clock.now()).total_seconds() + 1)  # the first slow one leaves
    assert analytics.recent_time_to_admit(room=clinic) == pytest.approx(20, abs=1)


def test_a_socket_knock_reads_the_estimate_in_the_same_call(clinic):
    dr = moderator(clinic)
    admit_after(clinic, dr, 45, 5)
    plan = services.join_plan(room_name="clinic", token=None, name="Pat")
    w = services.entry_request_knock_for_socket(plan=plan, conn=conn(browser="pat"))
    assert w.seconds_per_guest == pytest.approx(45, abs=1)
    assert (w.position, w.total) == (1, 1)
