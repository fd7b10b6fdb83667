"""The Redis channel layer, made to wait out Redis outages (``CHANNEL_LAYERS`` names it).

Channels' ``AsyncConsumer.__call__`` receives from the layer with ``channel_layer.receive``; in
channels_redis a Redis ``ConnectionError`` escapes that call and ends the consumer (close 1011)
— every socket of the process, one after the other, at the first outage. This subclass retries
the receive with a jittered backoff (0.2 s doubling to 2 s) and reports each failure to the
process's layer watcher (``RUNTIME.layer``), which decides "down" and "back" and resyncs the
sockets when Redis returns. So the consumer keeps Channels' own ``__call__``.

Only the receive retries: a ``group_send``, ``group_add`` or ``group_discard`` that fails
raises to its caller, who knows what the failure means (events are dropped and resynced, a join
answers ``UNAVAILABLE``, a closing socket's groups expire with ``group_expiry``).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from channels_redis.core import RedisChannelLayer as _Base

from .layerwatch import is_outage
from .process import RUNTIME

RETRY_FIRST, RETRY_MAX = 0.2, 2.0


class RedisChannelLayer(_Base):
    async def receive(self, channel: str) -> dict[str, Any]:
        backoff = RETRY_FIRST
        while True:
            try:
                message: dict[str, Any] = await super().receive(channel)
                return message
            except Exception as exc:
                if not is_outage(exc):
                    raise
                RUNTIME.layer.report_failure(exc)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))  # noqa: S311 - jitter
                backoff = min(backoff * 2, RETRY_MAX)
