"""The process machinery behind one door (issue 9 item 5): ``lobby.runtime.process.RUNTIME``.

It starts once, from ``config/asgi.py``, whatever number of requests and sockets arrive; it
stops cleanly; the consumer keeps Channels' own life cycle (the Redis-outage retry lives in the
channel layer), and the two methods it still overrides are pinned to the installed Channels.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from typing import Any

import channels
import pytest
from channels.consumer import AsyncConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import HttpCommunicator
from redis.exceptions import ConnectionError as RedisConnectionError

from lobby import events
from lobby.consumers import RoomConsumer
from lobby.runtime import layers
from lobby.runtime.process import RUNTIME, Runtime, RuntimeApp
from tests.lobby.helpers import aroom, atoken
from tests.support.ws import HOST, Client

pytestmark = pytest.mark.django_db(transaction=True)


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    return None


# Started once ------------------------------------------------------------------------------


async def test_the_wrapper_starts_the_runtime_once_for_every_scope():
    runs: list[int] = []

    async def job() -> None:
        runs.append(1)
        await asyncio.Event().wait()

    rt = Runtime(server_id="test-1")
    rt.job("probe", job)
    app = RuntimeApp(_ok, runtime=rt)
    for kind in ("http", "websocket", "http", "http"):
        await app({"type": kind}, None, None)
    await asyncio.sleep(0)
    assert rt.starts == 1
    assert runs == [1]
    assert rt.running() == ["layerwatch", "probe"]
    assert rt.loop is asyncio.get_running_loop()
    await rt.stop()


async def test_config_asgi_starts_the_process_runtime_once():
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    from config.asgi import application

    assert isinstance(application, RuntimeApp) and application.runtime is RUNTIME
    await RUNTIME.stop()  # whatever an earlier test of this process started
    before = RUNTIME.starts
    for _ in range(2):
        comm = HttpCommunicator(application, "GET", "/healthz", headers=[HOST])
        assert (await comm.get_response())["status"] == 200
    watcher = RUNTIME.tasks["layerwatch"]
    guest = Client("clinic")
    await guest.connect()
    await guest.send(type="join", token=await atoken(owner=True, sub="mo", name="Mo"))
    assert (await guest.expect("joined"))["participant"]["role"] == "moderator"
    assert RUNTIME.starts == before + 1
    assert RUNTIME.tasks["layerwatch"] is watcher and not watcher.done()
    assert RUNTIME.loop is asyncio.get_running_loop()
    # The tests run without the sweeper (conftest); the sweeper is a registered job all the same.
    assert "sweeper" in RUNTIME.jobs()
    assert RUNTIME.running() == ["layerwatch"]
    await guest.close()
    await RUNTIME.stop()


async def test_the_runtime_stops_cleanly_and_can_start_again():
    rt = Runtime(server_id="test-2")
    rt.start()
    first = rt.tasks["layerwatch"]
    await asyncio.sleep(0)
    await rt.stop()
    assert first.cancelled()
    assert rt.running() == [] and rt.loop is None
    rt.start()
    assert rt.starts == 2 and rt.running() == ["layerwatch"]
    assert rt.tasks["layerwatch"] is not first
    await rt.stop()


async def test_stop_also_ends_the_event_sender_of_the_loop():
    room = await aroom(name="clinic", privacy="private", enable_knocking=True)
    await RUNTIME.stop()
    RUNTIME.start()
    loop = asyncio.get_running_loop()
    events._post_here([(events.members_group(room.pk), {"type": events.EVENT, "frames": []})])
    sender = RUNTIME.senders[loop]
    await RUNTIME.stop()
    assert sender.task.cancelled() and loop not in RUNTIME.senders


# Channels' own life cycle ------------------------------------------------------------------


def _sha(fn: Any) -> str:
    return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]


def test_the_consumer_keeps_channels_own_call():
    assert RoomConsumer.__call__ is AsyncConsumer.__call__


def test_the_overridden_channels_methods_are_the_ones_reviewed():
    """``dispatch`` and ``websocket_disconnect`` are Channels' own minus the
    ``aclose_old_connections()`` hop (lobby/resilience.py says why). If Channels changes
    them, this fails: re-read the new version and carry over what it added."""
    assert channels.__version__ == "4.3.2"
    assert _sha(AsyncConsumer.dispatch) == "39f34e7d4fb0f655"
    assert _sha(AsyncWebsocketConsumer.websocket_disconnect) == "10f38aa55fd51ff5"
    # Channels' websocket_disconnect also discards ``self.groups``; the room consumer has none.
    assert not RoomConsumer.groups


async def test_dispatch_never_hops_to_the_orm_thread(monkeypatch):
    await aroom(name="clinic", privacy="private", enable_knocking=True)
    hops: list[int] = []

    async def counted() -> None:
        hops.append(1)

    monkeypatch.setattr("channels.consumer.aclose_old_connections", counted)
    monkeypatch.setattr("channels.generic.websocket.aclose_old_connections", counted)
    c = Client("clinic")
    await c.connect()
    await c.send(type="join", token=await atoken(owner=True, sub="mo", name="Mo"))
    await c.expect("joined")
    await c.close()
    assert hops == []


async def test_dispatch_refuses_what_channels_refuses():
    consumer = RoomConsumer()
    with pytest.raises(ValueError, match="Malformed"):
        await consumer.dispatch({"type": "_private"})
    with pytest.raises(ValueError, match="No handler"):
        await consumer.dispatch({"type": "no.such.handler"})


# The Redis-outage retry lives in the channel layer -------------------------------------------


def _redis_layer() -> layers.RedisChannelLayer:
    # Built, never connected: the parent's receive is replaced below.
    return layers.RedisChannelLayer(hosts=["redis://127.0.0.1:1/0"])


async def test_the_redis_layer_receive_waits_out_an_outage(monkeypatch):
    calls: list[int] = []

    async def flaky(self: Any, channel: str) -> dict[str, Any]:
        calls.append(1)
        if len(calls) <= 3:
            raise RedisConnectionError("Connection refused")
        return {"type": "anteroom.event", "frames": []}

    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    reported: list[BaseException | None] = []
    monkeypatch.setattr("channels_redis.core.RedisChannelLayer.receive", flaky)
    monkeypatch.setattr(layers.asyncio, "sleep", no_sleep)
    monkeypatch.setattr(RUNTIME.layer, "report_failure", reported.append)
    message = await _redis_layer().receive("specific.x!y")
    assert message == {"type": "anteroom.event", "frames": []}
    assert len(calls) == 4 and len(reported) == 3
    assert all(isinstance(e, RedisConnectionError) for e in reported)
    # jittered backoff, doubling: 0.2 → 0.4 → 0.8 (each times 0.5 to 1.5)
    assert 0.1 <= slept[0] <= 0.3 and 0.2 <= slept[1] <= 0.6 and 0.4 <= slept[2] <= 1.2


async def test_the_redis_layer_receive_raises_what_is_not_an_outage(monkeypatch):
    async def broken(self: Any, channel: str) -> dict[str, Any]:
        raise ValueError("not msgpack")

    monkeypatch.setattr("channels_redis.core.RedisChannelLayer.receive", broken)
    with pytest.raises(ValueError, match="msgpack"):
        await _redis_layer().receive("specific.x!y")


async def test_a_layer_outage_while_following_an_event_closes_the_socket_1011(monkeypatch):
    room = await aroom(name="clinic", privacy="private", enable_knocking=True)
    await RUNTIME.stop()
    mod = Client("clinic")
    await mod.connect()
    await mod.send(type="join", token=await atoken(owner=True, sub="mo", name="Mo"))
    await mod.expect("joined")
    watched = RUNTIME.layer.watched()
    assert watched >= 1
    layer = get_channel_layer()
    assert layer is not None
    reported: list[BaseException | None] = []
    monkeypatch.setattr(RUNTIME.layer, "report_failure", reported.append)

    async def down(group: str, channel: str) -> None:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(layer, "group_add", down)
    monkeypatch.setattr(layer, "group_discard", down)
    await layer.group_send(
        events.members_group(room.pk),
        {"type": events.EVENT, "frames": [], "action": "groups", "add": ["members.other"]},
    )
    assert await mod.recv() == {"type": "__closed__", "code": 1011}
    assert len(reported) == 1
    # and its disconnect ran as for any close: the watcher no longer resyncs it
    await mod.comm.send_input({"type": "websocket.disconnect", "code": 1011})
    await mod.comm.wait(timeout=3)
    assert len(reported) == 2  # its group_discard met the outage too, and was let go
    assert RUNTIME.layer.watched() == watched - 1
    await RUNTIME.stop()
