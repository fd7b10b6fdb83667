"""Process-wide watch on the channel layer (Redis): outages, restarts and group refresh.

Redis holds group membership only in memory: a restart (or a failover, or ``FLUSHALL``) silently
unsubscribes every socket, and every event sent while it was down is lost. The database stays
the truth, so the cure is to resubscribe and resend a snapshot:

* every second this watcher reads a marker key (``anteroom-epoch:<prefix>``) with a short
  timeout. A missing marker or one with a new value means the groups were lost (someone's
  process wrote a fresh marker); an answer after failures means events were lost. Either way each
  socket of this process re-``group_add``s its groups and sends its client a fresh snapshot
  (``RoomConsumer.resync``), spread over at most ``RESYNC_SPREAD`` seconds;
* while the marker cannot be read the layer counts as *down*: socket actions answer
  ``UNAVAILABLE`` and REST writes 503 (``lobby.ops.middleware``) instead of half-working;
* every ``GROUP_REFRESH`` seconds each socket re-adds its groups (``group_expiry`` is a day), so
  long-lived sockets never fall out of their groups.

The in-memory layer cannot lose groups; only the periodic refresh runs for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
import weakref
from typing import Any, Protocol

from django.conf import settings

log = logging.getLogger("anteroom.layer")

POLL_INTERVAL = 1.0
POLL_TIMEOUT = 1.0
RESYNC_SPREAD = 2.0
GROUP_REFRESH = 3600.0


class Resyncable(Protocol):
    def schedule_resync(self, *, delay: float, snapshot: bool) -> None: ...


def uses_redis() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


def is_outage(exc: BaseException) -> bool:
    """Whether an exception from the channel layer means Redis is unreachable."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, (OSError, TimeoutError, RedisConnectionError, RedisTimeoutError))


def _marker_key() -> str:
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")
    # Outside the layer's own key prefix, so ``layer.flush()`` in tests leaves it alone.
    return f"anteroom-epoch:{prefix}"


def _client() -> Any:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=POLL_TIMEOUT,
        socket_connect_timeout=POLL_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


async def _read_epoch(client: Any) -> bytes:
    key = _marker_key()
    value = await client.get(key)
    if value is None:
        await client.set(key, uuid.uuid4().hex.encode(), nx=True)
        value = await client.get(key)
    return bytes(value or b"")


class LayerWatch:
    """The watcher of one process (owned by ``lobby.runtime.process.RUNTIME``, which runs
    ``run()`` as one of its tasks): which sockets to resync, whether the layer is down."""

    def __init__(self) -> None:
        self._consumers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._down_since: float | None = None
        self._wake: asyncio.Event | None = None
        self.failures = 0
        self.resyncs = 0  # how many resyncs this process ran (for /readyz and tests)

    def register(self, consumer: Resyncable) -> None:
        self._consumers.add(consumer)

    def unregister(self, consumer: Resyncable) -> None:
        self._consumers.discard(consumer)

    def watched(self) -> int:
        """How many sockets of this process the watcher would resync now."""
        return len(self._consumers)

    def is_down(self) -> bool:
        """True while the watcher cannot reach Redis (always False for the in-memory layer)."""
        return self._down_since is not None

    def down_for(self) -> float:
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def report_failure(self, exc: BaseException | None = None) -> None:
        """A ``group_send``, ``group_add`` or receive failed because Redis is unreachable: wake
        the watcher to check now. It alone decides "down" and "back" (a stale pooled connection
        fails once right after Redis returns; that must not flip the state back to down)."""
        if not uses_redis() or (exc is not None and not is_outage(exc)):
            return
        if self._wake is not None:
            self._wake.set()

    def resync_all(self, *, snapshot: bool, spread: float | None = None) -> int:
        """Tell every socket of this process to re-add its groups (and send a snapshot), spread
        over time so that 10,000 sockets do not hit Redis and the database in the same instant."""
        consumers = list(self._consumers)
        if spread is None:
            spread = min(RESYNC_SPREAD, len(consumers) / 2000)
        for c in consumers:
            c.schedule_resync(delay=random.uniform(0, spread), snapshot=snapshot)  # noqa: S311
        if snapshot:
            self.resyncs += 1
        return len(consumers)

    async def run(self) -> None:
        """The watch loop (one task per process, on the server's loop)."""
        self._wake = wake = asyncio.Event()
        client = _client() if uses_redis() else None
        epoch: bytes | None = None
        slow_reads = 0
        next_refresh = time.monotonic() + GROUP_REFRESH
        try:
            while True:
                if client is not None:
                    try:
                        value = await asyncio.wait_for(_read_epoch(client), POLL_TIMEOUT * 2)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        self.failures += 1
                        from redis.exceptions import TimeoutError as RedisTimeoutError

                        timed_out = isinstance(exc, (TimeoutError, RedisTimeoutError))
                        slow_reads = slow_reads + 1 if timed_out else 0
                        # A refused or reset connection is an outage at once; a read that merely
                        # timed out must time out twice in a row (a busy event loop under a knock
                        # storm can delay one read past its timeout, and a false "down" answers
                        # UNAVAILABLE).
                        if self._down_since is None and (slow_reads == 0 or slow_reads >= 2):
                            self._down_since = time.monotonic()
                            log.warning("channel layer (Redis) unreachable")
                        with_client = client
                        client = _client()
                        try:
                            await with_client.aclose()
                        except Exception:  # noqa: S110 - the old client is broken anyway
                            pass
                    else:
                        slow_reads = 0
                        lost = epoch is not None and value != epoch
                        if self._down_since is not None or lost:
                            log.warning(
                                "channel layer back (%s); resubscribing %d sockets",
                                "restarted" if lost else "reachable again",
                                len(self._consumers),
                            )
                            self._down_since = None
                            self.resync_all(snapshot=True)
                        epoch = value
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + GROUP_REFRESH
                    self.resync_all(snapshot=False, spread=60.0)
                await asyncio.sleep(0.2)  # at most five checks a second, however many failures
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), POLL_INTERVAL)
                wake.clear()
        finally:
            if self._wake is wake:
                self._wake = None
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
