"""The embedded default's in-memory channel layer (lobby/runtime/memory_layer.py): Channels'
layer with its expiry sweep at most once a second instead of on every receive and send, and in
one pass instead of one scan of every group per expired message."""

from __future__ import annotations

import asyncio
import os
import time
from typing import cast

import pytest
from channels.exceptions import ChannelFull

from lobby.runtime import memory_layer
from lobby.runtime.memory_layer import InMemoryChannelLayer


def counting_sweeps(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = InMemoryChannelLayer._sweep

    def sweep(self, now):
        calls.append(1)
        real(self, now)

    monkeypatch.setattr(InMemoryChannelLayer, "_sweep", sweep)
    return calls


async def test_a_thousand_sends_and_receives_sweep_once_not_two_thousand_times(monkeypatch):
    sweeps = counting_sweeps(monkeypatch)
    layer = InMemoryChannelLayer(capacity=100)
    names = [await layer.new_channel() for _ in range(500)]
    for n in names:
        await layer.group_add("room", n)
    await layer.group_send("room", {"type": "x", "n": 1})
    got = [await layer.receive(n) for n in names]
    assert [m["n"] for m in got] == [1] * 500
    for n in names:
        await layer.send(n, {"type": "y"})
        assert (await layer.receive(n))["type"] == "y"
    # Channels' own layer sweeps all 500 channels on each of these 1,501 calls.
    assert len(sweeps) == 1


async def test_expired_messages_and_their_channels_still_go_after_the_interval(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(memory_layer.time, "monotonic", lambda: clock[0])
    wall = [5000.0]
    monkeypatch.setattr(memory_layer.time, "time", lambda: wall[0])
    monkeypatch.setattr("channels.layers.time.time", lambda: wall[0])
    layer = InMemoryChannelLayer(expiry=60, capacity=10)
    stale, fresh = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", stale)
    await layer.group_add("room", fresh)
    await layer.group_send("room", {"type": "old"})  # swept here: nothing expired yet
    wall[0] += 61  # the message to both has expired
    await layer.receive(fresh)  # fresh takes its (expired) copy: within the interval, no sweep
    await layer.group_discard("room", fresh)
    groups = cast(dict, layer.groups)
    assert stale in layer.channels and stale in groups["room"]
    clock[0] += 1.0  # the interval has passed: the next call sweeps
    await layer.group_send("other", {"type": "x"})
    # Like Channels' layer: the expired message is dropped and its channel leaves its groups.
    assert stale not in layer.channels
    assert stale not in groups.get("room", {})


async def test_the_end_of_a_big_meeting_does_not_stop_the_server_for_the_waiting_guests(
    monkeypatch,
):
    """The idle load test lost 100 waiting guests after admit-all of 1,000: the 1,000 closed
    sockets left 100 unread messages each (everyone's ``participant-left``), and when those
    expired 60 s later Channels' sweep scanned every group once per message (100,000 scans of
    the ~5,000 groups of the guests knocking by then): the event loop stood still for 20-40 s,
    no join was answered, and the load test's 100 joins in flight timed out (py-spy: the
    loop in ``_remove_from_groups`` for 20 s; this test took 5.6 s with it)."""
    wall = [5000.0]
    monkeypatch.setattr(memory_layer.time, "time", lambda: wall[0])
    monkeypatch.setattr("channels.layers.time.time", lambda: wall[0])
    layer = InMemoryChannelLayer(expiry=60, capacity=100)
    ended = []
    for _ in range(1000):  # the meeting's sockets: closed, their unread messages left behind
        name = await layer.new_channel()
        ended.append(name)
        for n in range(100):
            await layer.send(name, {"type": "anteroom.event", "n": n})
    waiting = []
    for i in range(2500):  # guests waiting meanwhile, each in its request and lobby groups
        name = await layer.new_channel()
        waiting.append(name)
        await layer.group_add(f"req.{i}", name)
        await layer.group_add(f"lobby.{i // 25}", name)
    wall[0] += 61
    layer._next_clean = 0.0  # the sweep is due
    t = time.perf_counter()
    await layer.group_send("lobby.0", {"type": "anteroom.event", "queue": 1})
    took = time.perf_counter() - t
    assert took < 1.0, f"the sweep held the event loop for {took:.2f} s"
    assert not set(ended) & set(layer.channels)  # the expired messages went, and their channels
    groups = cast(dict, layer.groups)
    assert all(waiting[i] in groups[f"req.{i}"] for i in range(2500))  # the guests stay
    assert [(await layer.receive(waiting[i]))["queue"] for i in range(25)] == [1] * 25


async def test_a_channel_whose_message_expired_leaves_all_its_groups_at_once(monkeypatch):
    wall = [5000.0]
    monkeypatch.setattr(memory_layer.time, "time", lambda: wall[0])
    monkeypatch.setattr("channels.layers.time.time", lambda: wall[0])
    layer = InMemoryChannelLayer(expiry=60, capacity=10)
    stuck, live = await layer.new_channel(), await layer.new_channel()
    for group in ("a", "b", "c"):
        await layer.group_add(group, stuck)
    await layer.group_add("a", live)
    await layer.group_send("a", {"type": "x"})
    await layer.group_send("b", {"type": "y"})
    assert (await layer.receive(live))["type"] == "x"
    wall[0] += 30
    await layer.send(stuck, {"type": "fresh"})  # not expired: kept for its receiver
    wall[0] += 31
    layer._next_clean = 0.0
    await layer.group_send("other", {"type": "z"})
    groups = cast(dict, layer.groups)
    assert groups == {"a": {live: groups["a"][live]}}  # "b" and "c" emptied and gone
    assert (await layer.receive(stuck))["type"] == "fresh"


async def test_memberships_older_than_group_expiry_end(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(memory_layer.time, "monotonic", lambda: clock[0])
    wall = [5000.0]
    monkeypatch.setattr(memory_layer.time, "time", lambda: wall[0])
    monkeypatch.setattr("channels.layers.time.time", lambda: wall[0])
    layer = InMemoryChannelLayer(group_expiry=100)
    old = await layer.new_channel()
    await layer.group_add("room", old)
    await layer.group_send("room", {"type": "x"})  # swept: nothing too old
    assert (await layer.receive(old))["type"] == "x"  # nothing left to expire
    wall[0] += 90
    new = await layer.new_channel()
    await layer.group_add("room", new)
    wall[0] += 20  # old has been in the group 110 s, new 20 s
    clock[0] += layer.group_clean_interval
    await layer.group_send("other", {"type": "x"})
    assert set(cast(dict, layer.groups)["room"]) == {new}


async def test_a_full_member_loses_only_its_own_copy():
    layer = InMemoryChannelLayer(capacity=1)
    full, ok = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", full)
    await layer.group_add("room", ok)
    await layer.send(full, {"type": "first"})
    await layer.group_send("room", {"type": "second"})
    assert (await layer.receive(ok))["type"] == "second"
    assert (await layer.receive(full))["type"] == "first"
    assert layer.channels.get(full) is None or layer.channels[full].empty()


async def test_each_member_gets_its_own_copy():
    layer = InMemoryChannelLayer()
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", a)
    await layer.group_add("room", b)
    msg: dict = {"type": "x", "frames": [{"n": 1}]}
    await layer.group_send("room", msg)
    got_a, got_b = await asyncio.gather(layer.receive(a), layer.receive(b))
    got_a["frames"][0]["n"] = 2
    assert got_b["frames"][0]["n"] == 1 and msg["frames"][0]["n"] == 1


@pytest.mark.skipif(
    bool(os.environ.get("REDIS_URL")),
    reason="REDIS_URL chooses the Redis layer (the PostgreSQL + Redis pass of scripts/test)",
)
def test_the_embedded_default_uses_it(settings):
    from channels.layers import get_channel_layer

    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == (
        "lobby.runtime.memory_layer.InMemoryChannelLayer"
    )
    assert isinstance(get_channel_layer(), InMemoryChannelLayer)


async def test_a_receive_builds_no_queue_when_its_channel_has_one(monkeypatch):
    """Channels' layer builds (and throws away) an ``asyncio.Queue`` on every ``receive`` and
    drops a drained queue, so each message cost one or two new queues; admit-all of 1,000 spent
    ~20 % of its samples there. Here a waiting socket keeps one inbox for all its messages."""
    built: list[int] = []
    real = asyncio.Queue

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(asyncio, "Queue", Counting)
    layer = InMemoryChannelLayer()
    name = await layer.new_channel()
    await layer.group_add("room", name)
    waiting = asyncio.ensure_future(layer.receive(name))
    await asyncio.sleep(0)
    inbox = layer.channels[name]
    for n in range(100):
        await layer.group_send("room", {"type": "x", "n": n})
        await layer.send(name, {"type": "y", "n": n})
        assert (await waiting)["n"] == n
        assert (await layer.receive(name))["type"] == "y"
        waiting = asyncio.ensure_future(layer.receive(name))
        await asyncio.sleep(0)
        assert layer.channels[name] is inbox
    assert built == []
    waiting.cancel()


async def test_a_woken_receiver_that_is_cancelled_leaves_the_message_for_the_next():
    layer = InMemoryChannelLayer()
    name = await layer.new_channel()
    first = asyncio.ensure_future(layer.receive(name))
    second = asyncio.ensure_future(layer.receive(name))
    await asyncio.sleep(0)
    await layer.send(name, {"type": "x"})
    first.cancel()  # woken, but cancelled before it ran
    assert (await second)["type"] == "x"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_an_inbox_keeps_order_and_capacity():
    layer = InMemoryChannelLayer(capacity=3)
    name = await layer.new_channel()
    for n in range(3):
        await layer.send(name, {"type": "x", "n": n})
    with pytest.raises(ChannelFull):
        await layer.send(name, {"type": "x", "n": 3})
    assert [(await layer.receive(name))["n"] for _ in range(3)] == [0, 1, 2]


async def test_a_stopped_receiver_leaves_no_queue_behind():
    layer = InMemoryChannelLayer()
    name = await layer.new_channel()
    await layer.send(name, {"type": "x"})
    assert (await layer.receive(name))["type"] == "x"
    waiting = asyncio.ensure_future(layer.receive(name))
    await asyncio.sleep(0)
    assert name in layer.channels
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert name not in layer.channels


def test_the_copy_of_a_message_equals_deepcopys_and_shares_nothing_mutable():
    from copy import deepcopy

    shared = {"participant_id": "p", "name": "Zoë"}
    msg = {
        "type": "anteroom.event",
        "texts": ["{}"],
        "frames": [{"participant": shared, "n": 1, "f": 1.5, "ok": True, "none": None}, shared],
        "add": ("a", "b"),  # not JSON-shaped: copied by deepcopy
        "raw": b"x",
    }
    out = memory_layer._copy(msg)
    assert out == deepcopy(msg)
    assert out["frames"] is not msg["frames"] and out["frames"][1] is not shared
    assert out["frames"][0]["participant"] is not shared
