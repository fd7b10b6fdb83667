"""Abuse limits: open sockets per address and per personal token; coalesced knock alerts."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from lobby.events import KnockAlerts
from tests.factories import make_room, make_token

adb = database_sync_to_async


async def rejected(client) -> bool:
    """True if the server answered RATE_LIMITED and closed with 4429."""
    frame = await client.recv()
    if frame["type"] != "error" or frame["error"]["code"] != "RATE_LIMITED":
        return False
    return (await client.recv())["code"] == 4429


@pytest.mark.django_db(transaction=True)
@override_settings(ANTEROOM_MAX_SOCKETS_PER_ADDRESS=3)
async def test_one_address_gets_a_capped_number_of_sockets(clients):
    await adb(make_room)("clinic")
    held = [await clients("clinic", client=("10.1.1.1", 1000 + i)) for i in range(3)]
    extra = await clients("clinic", client=("10.1.1.1", 2000))
    assert await rejected(extra)
    # Other addresses, and the sockets already open, are unaffected.
    other = await clients("clinic", client=("10.1.1.2", 1000))
    assert (await other.request("join", name="Neighbour"))["ok"]
    assert (await held[0].request("join", name="First"))["ok"]
    # Closing one frees its slot.
    await held[1].close()
    await asyncio.sleep(0.05)
    again = await clients("clinic", client=("10.1.1.1", 3000))
    assert (await again.request("join", name="Back"))["ok"]


@pytest.mark.django_db(transaction=True)
@override_settings(ANTEROOM_MAX_SOCKETS_PER_ADDRESS=2)
async def test_loopback_is_not_capped(clients):
    """A reverse proxy on the same host makes every client 127.0.0.1."""
    await adb(make_room)("clinic")
    socks = [await clients("clinic", client=("127.0.0.1", 4000 + i)) for i in range(4)]
    for s in socks:
        assert await s.nothing(0.05)


@pytest.mark.django_db(transaction=True)
@override_settings(ANTEROOM_MAX_SOCKETS_PER_TOKEN=2)
async def test_a_personal_token_opens_a_capped_number_of_sockets(clients):
    await adb(make_room)("clinic")
    personal = await adb(make_token)(room="clinic", sub="pat", name="Pat")
    audience = await adb(make_token)(room="clinic", viewer=True)
    a = await clients("clinic", client=("10.2.0.1", 1))
    b = await clients("clinic", client=("10.2.0.2", 1))
    c = await clients("clinic", client=("10.2.0.3", 1))
    assert (await a.request("join", token=personal))["ok"]
    assert (await b.request("join", token=personal))["ok"]
    ack = await c.request("join", token=personal)
    assert ack["error"]["code"] == "RATE_LIMITED"
    assert (await c.recv())["code"] == 4429
    # A reusable audience token (no sub) is shared by design: only the address cap applies.
    viewers = [await clients("clinic", client=(f"10.2.1.{i}", 1)) for i in range(4)]
    for v in viewers:
        assert (await v.request("join", token=audience))["ok"]


@pytest.mark.django_db(transaction=True)
async def test_a_knock_raid_is_one_alert_a_second(clients):
    await adb(make_room)("clinic", privacy="private", enable_knocking=True)
    owner = await adb(make_token)(room="clinic", sub="dr", owner=True)
    member = await adb(make_token)(room="clinic", sub="nurse")
    mod = await clients("clinic", client=("10.3.0.1", 1))
    assert (await mod.request("join", token=owner))["ok"]
    nurse = await clients("clinic", client=("10.3.0.2", 1))
    assert (await nurse.request("join", token=member))["ok"]
    n = 40
    guests = [await clients("clinic", client=(f"10.4.{i}.1", 1)) for i in range(n)]
    await asyncio.gather(*(g.send(type="join", name=f"g{i}") for i, g in enumerate(guests)))

    requested: set[str] = set()
    alerts: list[tuple[float, int, int]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (len(requested) < n or sum(a[1] for a in alerts) < n):
        frame = await mod.recv(timeout=3)
        if frame["type"] == "entry-requested":
            requested.add(frame["request"]["id"])
        elif frame["type"] == "knock-alert":
            alerts.append((time.monotonic(), frame["count"], frame["waiting"]))
    # Every knock still reaches the moderator; the alerts are few, spaced and add up.
    assert len(requested) == n
    assert sum(count for _, count, _ in alerts) == n
    assert 1 <= len(alerts) <= 3
    assert all(b[0] - a[0] >= 0.9 for a, b in itertools.pairwise(alerts))
    assert alerts[-1][2] == n
    assert await mod.nothing(1.2)  # no further alert once the raid is told
    assert not any(f["type"] in ("knock-alert", "entry-requested") for f in nurse.seen)


def test_knock_alerts_coalesce_per_interval():
    alerts = KnockAlerts(pending=["old"])

    def knock(rid: str) -> None:
        alerts.saw({"type": "entry-requested", "request": {"id": rid}})

    assert alerts.due_in(0.0) is None
    knock("a")
    assert alerts.due_in(0.0) == 0.0  # a lone knock is told at once
    assert alerts.take(0.0) == {"type": "knock-alert", "count": 1, "waiting": 2}
    for i in range(99):
        knock(f"r{i}")
    alerts.saw({"type": "entry-resolved", "request_id": "old"})
    alerts.saw({"type": "entry-canceled", "request_id": "r0"})
    knock("r1")  # a repeat of a known request is not a new knock
    assert alerts.due_in(0.4) == pytest.approx(0.6)
    assert alerts.take(1.0) == {"type": "knock-alert", "count": 99, "waiting": 99}
    assert alerts.due_in(1.5) is None
