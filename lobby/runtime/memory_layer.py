"""The in-memory channel layer of the embedded default (one process, no Redis).

Channels' ``InMemoryChannelLayer`` sweeps *every* channel and *every* group membership for
expired entries on each ``receive`` and each ``group_send``: with N open sockets that is O(N)
work per message, so a room of 1,000 (admit-all: 1,000 ``joined`` messages, then each guest's
next receive) costs O(N²) — it took admit-all of 1,000 to ~29 s on one process, and made every
knock pay ~12 % of its CPU for sweeping 300 idle sockets. This layer is the same layer with:

* the sweep at most once per ``clean_interval`` (1 s): a message may outlive its 60 s
  ``expiry`` by up to a second, a group membership its day-long ``group_expiry`` likewise;
* ``group_send`` queuing to each member directly instead of one task per member (each member
  still gets its own deep copy, and a full channel still drops only that member's copy).

Delivery order, capacity and the ``ChannelFull`` behaviour are Channels' own.
"""

from __future__ import annotations

import asyncio
import time
from copy import deepcopy
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as _Base


class InMemoryChannelLayer(_Base):
    clean_interval = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_clean = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_clean:
            return
        self._next_clean = now + self.clean_interval
        super()._clean_expired()  # type: ignore[misc]  # untyped in types-channels

    def _put(self, channel: str, message: dict[str, Any]) -> None:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        try:
            queue.put_nowait((time.time() + self.expiry, deepcopy(message)))
        except asyncio.QueueFull as exc:
            raise ChannelFull(channel) from exc

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:
                self._put(channel, message)
            except ChannelFull:
                pass
