"""Rate limits on knocks and joins, counted from the stored rows under the room lock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings

from .. import rawsql
from ..errors import EntryRateLimited
from ..models import EntryRequest, Participant, Room
from ..runtime import limits
from .access import Connection, JoinPlan


def check_join_limit(*, room: Room, conn: Connection, now: Any) -> None:
    """``ANTEROOM_ADDRESS_JOIN_LIMIT`` fresh presences per client address and room, counted
    from the rows themselves (exact, under the room lock). Loopback is not limited."""
    address = limits.address_key(conn.client_address)
    n, seconds = settings.ANTEROOM_ADDRESS_JOIN_LIMIT
    if not address or n <= 0:
        return
    since = now - timedelta(seconds=seconds)
    made = Participant.objects.filter(room=room, client_address=address, created_at__gt=since)
    if made.count() >= n:
        raise EntryRateLimited()


@dataclass(frozen=True)
class KnockLimit:
    """At most ``n`` knocks matching ``where`` (column, value) within ``seconds``."""

    n: int
    seconds: int
    where: tuple[tuple[str, Any], ...]


def knock_limits(
    *, plan: JoinPlan, conn: Connection
) -> tuple[tuple[str, str] | None, list[KnockLimit]]:
    """The limits a fresh knock counts against, and the key whose lock (``locks.lock_knock``)
    makes a limit that spans rooms exact: a token's (``ANTEROOM_KNOCK_LIMIT``, every room), else
    a browser's (``ANTEROOM_BROWSER_KNOCK_LIMIT``, every room) and an address's in this room
    (``ANTEROOM_ADDRESS_KNOCK_LIMIT``; the room lock covers it)."""
    if plan.claims is not None:
        key = plan.claims.key
        return ("token", key), [KnockLimit(*settings.ANTEROOM_KNOCK_LIMIT, (("token_key", key),))]
    lock: tuple[str, str] | None = None
    found = []
    if conn.browser_key:
        lock = ("browser", conn.browser_key)
        found.append(
            KnockLimit(*settings.ANTEROOM_BROWSER_KNOCK_LIMIT, (("browser_key", conn.browser_key),))
        )
    if conn.client_address:
        where = (
            ("client_address", conn.client_address),
            ("room_id", plan.room.pk),
            ("token_key", ""),
        )
        found.append(KnockLimit(*settings.ANTEROOM_ADDRESS_KNOCK_LIMIT, where))
    return lock, found


def limit_subquery(limit: KnockLimit, *, now: Any) -> tuple[str, list[Any]]:
    """A scalar subquery: the ``n``-th newest knock under ``limit`` still inside its window
    (NULL: fewer than ``n``, the knock is allowed) — for ``refuse_over_limit``. Read it holding
    the room lock and the key's lock, in a statement after them."""
    conds, params = [], []
    for name, value in limit.where:
        field = rawsql.field(EntryRequest, name)
        conds.append(f'"{field.column}" = %s')
        params.append(rawsql.db_value(field, value))
    since = now - timedelta(seconds=limit.seconds)
    params += [rawsql.db_value(rawsql.field(EntryRequest, "requested_at"), since), limit.n - 1]
    table = EntryRequest._meta.db_table
    sql = (
        f'(SELECT "requested_at" FROM "{table}" WHERE {" AND ".join(conds)} '  # noqa: S608
        'AND "requested_at" > %s ORDER BY "requested_at" DESC LIMIT 1 OFFSET %s)'
    )
    return sql, params


def refuse_over_limit(limit: KnockLimit, nth_newest: Any, *, now: Any) -> None:
    """Raise ``EntryRateLimited`` with ``retry_after`` if ``limit`` is used up (``nth_newest``:
    ``limit_subquery``'s value): the seconds until that knock leaves its window (then one knock
    is allowed again). Counted from the stored knocks, exact under the locks."""
    if nth_newest is None:
        return
    wait = (rawsql.when(nth_newest) + timedelta(seconds=limit.seconds) - now).total_seconds()
    retry_after = max(1, math.ceil(wait))
    raise EntryRateLimited(
        f"Too many requests to join. Try again in {_duration_words(retry_after)}.",
        retry_after=retry_after,
    )


def _duration_words(seconds: int) -> str:
    """``45 seconds``, ``1 minute``, ``4 minutes`` (rounded up to whole minutes past one)."""
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
