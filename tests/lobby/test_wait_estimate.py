"""The estimated wait: queue position times the room's recent median time to admit, said only when
there are enough recent admissions."""

from __future__ import annotations

import pytest

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
