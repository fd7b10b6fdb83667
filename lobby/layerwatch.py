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


_consumers: weakref.WeakSet[Any] = weakref.WeakSet()
_task: asyncio.Task[None] | None = None
_loop: asyncio.AbstractEventLoop | None = None
_down_since: float | None = None
_wake: asyncio.Event | None = None
_failures = 0
resyncs = 0  # how many resyncs this process ran (for /readyz and tests)


def uses_redis() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


def register(consumer: Resyncable) -> None:
    _consumers.add(consumer)


def unregister(consumer: Resyncable) -> None:
    _consumers.discard(consumer)


def is_down() -> bool:
    """True while the watcher cannot reach Redis (always False for the in-memory layer)."""
    return _down_since is not None


def down_for() -> float:
    return 0.0 if _down_since is None else time.monotonic() - _down_since


def is_outage(exc: BaseException) -> bool:
    """Whether an exception from the channel layer means Redis is unreachable."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, (OSError, TimeoutError, RedisConnectionError, RedisTimeoutError))


def report_failure(exc: BaseException | None = None) -> None:
    """A ``group_send``, ``group_add`` or receive failed because Redis is unreachable: wake the
    watcher to check now. It alone decides "down" and "back" (a stale pooled connection fails
    once right after Redis returns; that must not flip the state back to down)."""
    if not uses_redis() or (exc is not None and not is_outage(exc)):
        return
    if _wake is not None:
        _wake.set()


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


def resync_all(*, snapshot: bool, spread: float | None = None) -> int:
    """Tell every socket of this process to re-add its groups (and send a snapshot), spread
    over time so that 10,000 sockets do not hit Redis and the database in the same instant."""
    global resyncs
    consumers = list(_consumers)
    if spread is None:
        spread = min(RESYNC_SPREAD, len(consumers) / 2000)
    for c in consumers:
        c.schedule_resync(delay=random.uniform(0, spread), snapshot=snapshot)  # noqa: S311
    if snapshot:
        resyncs += 1
    return len(consumers)


async def _watch() -> None:
    global _down_since, _failures
    client = _client() if uses_redis() else None
    epoch: bytes | None = None
    slow_reads = 0
    next_refresh = time.monotonic() + GROUP_REFRESH
    while True:
        if client is not None:
            try:
                value = await asyncio.wait_for(_read_epoch(client), POLL_TIMEOUT * 2)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _failures += 1
                from redis.exceptions import TimeoutError as RedisTimeoutError

                timed_out = isinstance(exc, (TimeoutError, RedisTimeoutError))
                slow_reads = slow_reads + 1 if timed_out else 0
                # A refused or reset connection is an outage at once; a read that merely timed
                # out must time out twice in a row (a busy event loop under a knock storm can
                # delay one read past its timeout, and a false "down" answers UNAVAILABLE).
                if _down_since is None and (slow_reads == 0 or slow_reads >= 2):
                    _down_since = time.monotonic()
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
                if _down_since is not None or lost:
                    log.warning(
                        "channel layer back (%s); resubscribing %d sockets",
                        "restarted" if lost else "reachable again",
                        len(_consumers),
                    )
                    _down_since = None
                    resync_all(snapshot=True)
                epoch = value
        if time.monotonic() >= next_refresh:
            next_refresh = time.monotonic() + GROUP_REFRESH
            resync_all(snapshot=False, spread=60.0)
        assert _wake is not None
        await asyncio.sleep(0.2)  # at most five checks a second, however many failures
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_wake.wait(), POLL_INTERVAL)
        _wake.clear()


def ensure_started() -> None:
    """Start this process's watcher on the running loop (idempotent, loop-aware)."""
    global _task, _loop, _wake
    loop = asyncio.get_running_loop()
    if _task is not None and _loop is loop and not _task.done():
        return
    _loop = loop
    _wake = asyncio.Event()
    _task = loop.create_task(_watch())
