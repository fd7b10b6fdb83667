"""The in-memory channel layer of the embedded default (one process, no Redis).

Channels' ``InMemoryChannelLayer`` sweeps *every* channel and *every* group membership for
expired entries on each ``receive`` and each ``group_send``: with N open sockets that is O(N)
work per message, so a room of 1,000 (admit-all: 1,000 ``joined`` messages, then each guest's
next receive) costs O(N²) — it took admit-all of 1,000 to ~29 s on one process, and made every
knock pay ~12 % of its CPU for sweeping 300 idle sockets. This layer is the same layer with:

* the sweep at most once per ``clean_interval`` (1 s): a message may outlive its 60 s
  ``expiry`` by up to a second, a group membership its day-long ``group_expiry`` by up to
  ``group_clean_interval`` (a minute);
* the sweep in one pass over the channels and at most one over the group memberships.
  Channels' sweep scans *every* group once for *each* expired message, to drop its channel
  from them: when a meeting of 1,000 ends, the closed sockets leave up to ``capacity`` unread
  messages each (everyone's ``participant-left``), and 60 s later that was 100,000 scans of
  the thousands of groups of the guests waiting by then — the event loop stopped for 20-40 s
  (no handshake, no frame answered: the idle load test lost the 100 guests in flight). Here
  the channels with an expired message are collected first and leave their groups together;
* ``group_send`` queuing to each member directly instead of one task per member (each member
  still gets its own deep copy, and a full channel still drops only that member's copy);
* that copy made by ``_copy`` (dicts and lists rebuilt, strings and numbers shared as they are
  immutable, anything else through ``deepcopy``): the messages are JSON-shaped, and
  ``deepcopy``'s memo and dispatch cost several times more per object;
* ``send`` and ``receive`` building a channel's queue only when the channel has none
  (Channels' ``setdefault(channel, asyncio.Queue(...))`` builds one, with its
  ``asyncio.Event``, on every call and throws it away: ~20 % of the server's samples during
  admit-all of 1,000), and a waiting socket keeping its queue between messages instead of
  dropping it when it runs empty and building a new one for the next message. A queue still
  goes when its receiver stops (the receive is cancelled) or, left behind, with the sweep;
* that queue an ``_Inbox`` (the few ``asyncio.Queue`` methods used, in a tenth of its memory:
  every open socket holds one).

Delivery order, capacity and the ``ChannelFull`` behaviour are Channels' own.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from copy import deepcopy
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as _Base

_ATOMIC = (str, int, float, bool, type(None), bytes)


def _copy(value: Any) -> Any:
    """A deep copy of a JSON-shaped value (what ``deepcopy`` returns for it, without sharing
    between the copies of one object that appears twice)."""
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _ATOMIC else _copy(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _ATOMIC else _copy(v) for v in value]
    if kind in _ATOMIC:
        return value
    return deepcopy(value)


Item = tuple[float, dict[str, Any]]  # (expires at, message)


class _Inbox:
    """One channel's messages and its receivers: the part of ``asyncio.Queue`` that the layer
    (and Channels' sweep: ``empty``, ``_queue``, ``get_nowait``) uses, in ~300 bytes while a
    socket waits instead of ~3 KB (a queue has three deques and an ``asyncio.Event`` with a
    fourth; every open socket has one for as long as it is open). Same behaviour: a woken
    receiver takes the oldest message when it runs, a cancelled one leaves it for the next."""

    __slots__ = ("_queue", "maxsize", "waiters")

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._queue: deque[Item] | None = None  # made when a message arrives
        self.waiters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._queue

    def qsize(self) -> int:
        return len(self._queue) if self._queue else 0

    def put_nowait(self, item: Item) -> None:
        if self._queue is None:
            self._queue = deque()
        elif 0 < self.maxsize <= len(self._queue):
            raise asyncio.QueueFull
        self._queue.append(item)
        self._wake()

    def get_nowait(self) -> Item:
        if not self._queue:
            raise asyncio.QueueEmpty
        item = self._queue.popleft()
        if not self._queue:
            self._queue = None
        return item

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                break
        if not self.waiters:
            self.waiters = None

    async def get(self) -> Item:
        while not self._queue:
            waiter = asyncio.get_running_loop().create_future()
            if self.waiters is None:
                self.waiters = []
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                if self.waiters is not None and waiter in self.waiters:
                    self.waiters.remove(waiter)
                    if not self.waiters:
                        self.waiters = None
                elif self._queue:
                    self._wake()  # woken but cancelled: the next receiver takes the message
                raise
        return self.get_nowait()


class InMemoryChannelLayer(_Base):
    clean_interval = 1.0
    group_clean_interval = 60.0
    channels: dict[str, _Inbox]  # type: ignore[assignment]  # asyncio.Queue in the stubs
    groups: dict[str, dict[str, float]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_clean = 0.0
        self._next_group_clean = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_clean:
            return
        self._next_clean = now + self.clean_interval
        self._sweep(now)

    def _sweep(self, now: float) -> None:
        """What Channels' sweep does: expired messages are dropped, a channel that had one
        leaves every group (its receiver is gone or stuck), a drained channel goes, and a
        membership older than ``group_expiry`` ends. In O(channels + expired messages), plus
        O(memberships) when a channel must leave its groups or the memberships are due."""
        wall = time.time()
        expired: set[str] = set()
        for channel, inbox in list(self.channels.items()):
            queue = inbox._queue
            if queue and queue[0][0] < wall:
                while queue and queue[0][0] < wall:
                    queue.popleft()
                expired.add(channel)
                if not queue:
                    inbox._queue = None
                    del self.channels[channel]
        by_age = now >= self._next_group_clean
        if not expired and not by_age:
            return
        if by_age:
            self._next_group_clean = now + self.group_clean_interval
        oldest = int(wall) - self.group_expiry  # Channels' cut-off
        for group, members in list(self.groups.items()):
            gone = [
                name
                for name, joined in members.items()
                if name in expired or (by_age and joined and joined < oldest)
            ]
            for name in gone:
                del members[name]
            if not members:
                del self.groups[group]

    def _put(self, channel: str, message: dict[str, Any]) -> None:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = _Inbox(self.get_capacity(channel))
        try:
            queue.put_nowait((time.time() + self.expiry, _copy(message)))
        except asyncio.QueueFull as exc:
            raise ChannelFull(channel) from exc

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        self._put(channel, message)

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = _Inbox(self.get_capacity(channel))
        try:
            _, message = await queue.get()
        except BaseException:
            # The receiver stopped (its consumer ended): like Channels, drop an empty queue.
            if queue.empty() and self.channels.get(channel) is queue:
                del self.channels[channel]
            raise
        return message

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:
                self._put(channel, message)
            except ChannelFull:
                pass
