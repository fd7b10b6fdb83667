"""Rate limits on knocks and joins, counted from the stored rows under the room lock."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.conf import settings

from ..errors import EntryRateLimited
from ..models import EntryRequest, Participant, Room
from ..runtime import limits
from .access import Connection, JoinPlan
from .locks import lock_limit_key


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


def check_knock_limits(*, plan: JoinPlan, conn: Connection, now: Any) -> None:
    """Raise ``EntryRateLimited`` with ``retry_after``: the seconds until the oldest knock that
    counts against the limit leaves its window (then one knock is allowed again). Counted from
    the stored knocks, exact: the caller holds the room lock and, for the per-token and
    per-browser limits that span rooms, the key's lock (``lock_limit_key``)."""

    def check(limit: tuple[int, int], **filters: Any) -> None:
        n, seconds = limit
        since = now - timedelta(seconds=seconds)
        recent = list(
            EntryRequest.objects.filter(requested_at__gt=since, **filters)
            .order_by("-requested_at")
            .values_list("requested_at", flat=True)[:n]
        )
        if len(recent) >= n:
            wait = (recent[-1] + timedelta(seconds=seconds) - now).total_seconds()
            retry_after = max(1, math.ceil(wait))
            raise EntryRateLimited(
                f"Too many requests to join. Try again in {_duration_words(retry_after)}.",
                retry_after=retry_after,
            )

    if plan.claims is not None:
        lock_limit_key("token", plan.claims.key)
        check(settings.ANTEROOM_KNOCK_LIMIT, token_key=plan.claims.key)
        return
    if conn.browser_key:
        lock_limit_key("browser", conn.browser_key)
        check(settings.ANTEROOM_BROWSER_KNOCK_LIMIT, browser_key=conn.browser_key)
    if conn.client_address:
        check(
            settings.ANTEROOM_ADDRESS_KNOCK_LIMIT,
            client_address=conn.client_address,
            room=plan.room,
            token_key="",
        )


def _duration_words(seconds: int) -> str:
    """``45 seconds``, ``1 minute``, ``4 minutes`` (rounded up to whole minutes past one)."""
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
