"""Reads over the audit trail: the rows themselves (REST export) and lobby analytics.

Analytics come from ``AuditEvent`` rows (``knock``, ``admitted``, ``denied``, ``cancel``), so they
describe what happened even after entry requests are gone, and they cover the retention window
that ``manage.py purge`` keeps. Times are the project clock's (``lobby.clock``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from . import clock
from .errors import BadRequest
from .models import AuditEvent, EntryRequest, Room

RESOLUTIONS = ("admitted", "denied", "cancel")


def _ts(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def parse_since(value: str | None) -> datetime | None:
    """An ISO 8601 time (``2026-11-24T10:00:00Z``; no zone means UTC), or ``BadRequest``."""
    if value is None or value == "":
        return None
    text = value.strip()
    if "T" in text:  # an unencoded "+01:00" in a query string arrives as " 01:00"
        text = re.sub(r" (\d{2}(?::?\d{2})?)$", r"+\1", text)
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise BadRequest("since must be an ISO 8601 time, e.g. 2026-11-24T10:00:00Z.")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def audit_events(*, room: Room, since: datetime | None = None) -> QuerySet[AuditEvent]:
    """A room's audit rows (its breakout rooms' too), oldest first."""
    qs = AuditEvent.objects.filter(Q(room=room) | Q(room__parent=room))
    if since is not None:
        qs = qs.filter(at__gte=since)
    return qs.order_by("at", "pk")


def audit_payload(e: AuditEvent) -> dict[str, Any]:
    return {
        "at": _ts(e.at),
        "room": e.room_name,
        "actor": e.actor,
        "action": e.action,
        "request_id": str(e.request_id) if e.request_id else None,
        "subject": e.subject,
        "data": e.data,
    }


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``p`` % of values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def room_analytics(*, room: Room, since: datetime | None = None) -> dict[str, Any]:
    """Lobby analytics of a room since ``since`` (default: all the retained trail).

    ``time_to_admit`` (seconds from knock to admission: p50, p90, mean, max), ``abandonment_rate``
    (canceled / all resolved: guests who gave up, timed out or dropped), ``peak_queue`` (most
    guests waiting at once, and when), counts by outcome and cancel reason, ``waiting`` now, and
    counts of every audited action (breakout and room-state actions included).
    """
    now = clock.now()
    rows = list(
        audit_events(room=room, since=since).values_list("at", "action", "request_id", "data")
    )
    # Guests already waiting when the window opens count toward its queue.
    queue: set[Any] = set()
    if since is not None:
        before = AuditEvent.objects.filter(room=room, at__lt=since, request_id__isnull=False)
        knocked = set(before.filter(action="knock").values_list("request_id", flat=True))
        ended = set(before.filter(action__in=RESOLUTIONS).values_list("request_id", flat=True))
        queue = knocked - ended
    peak, peak_at = len(queue), (since if queue else None)
    knock_at: dict[Any, datetime] = {}
    actions: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    admitted_ids: list[tuple[Any, datetime]] = []
    for at, action, request_id, data in rows:
        actions[action] += 1
        if action == "knock" and request_id is not None:
            knock_at[request_id] = at
            queue.add(request_id)
            if len(queue) > peak:
                peak, peak_at = len(queue), at
        elif action in RESOLUTIONS and request_id is not None:
            queue.discard(request_id)
            if action == "admitted":
                admitted_ids.append((request_id, at))
            elif action == "cancel":
                reasons[str((data or {}).get("reason") or "aborted")] += 1
    missing = [rid for rid, _ in admitted_ids if rid not in knock_at]
    if missing:  # knocked before the window, admitted inside it
        knock_at.update(
            AuditEvent.objects.filter(action="knock", request_id__in=missing).values_list(
                "request_id", "at"
            )
        )
    # A wall clock stepped backwards between knock and admission counts as 0 s, never negative.
    waits = [
        max(0.0, (at - knock_at[rid]).total_seconds())
        for rid, at in admitted_ids
        if rid in knock_at
    ]
    admitted, denied, canceled = actions["admitted"], actions["denied"], actions["cancel"]
    resolved = admitted + denied + canceled
    return {
        "room": room.name,
        "since": _ts(since),
        "until": _ts(now),
        "knocks": actions["knock"],
        "admitted": admitted,
        "denied": denied,
        "canceled": canceled,
        "cancel_reasons": dict(sorted(reasons.items())),
        "resolved": resolved,
        "abandonment_rate": round(canceled / resolved, 4) if resolved else None,
        "time_to_admit": {
            "count": len(waits),
            "p50": percentile(waits, 50),
            "p90": percentile(waits, 90),
            "mean": round(sum(waits) / len(waits), 3) if waits else None,
            "max": max(waits) if waits else None,
        },
        "peak_queue": peak,
        "peak_queue_at": _ts(peak_at),
        "waiting": EntryRequest.objects.filter(
            room=room, status=EntryRequest.Status.PENDING, expires_at__gt=now
        ).count(),
        "actions": dict(sorted(actions.items())),
    }


# Estimated wait ---------------------------------------------------------------------------

ESTIMATE_WINDOW = 2 * 3600  # seconds of recent admissions that count
ESTIMATE_SAMPLES = 50  # at most this many of the newest
ESTIMATE_MIN_SAMPLES = 5  # fewer: no estimate (a guess from two admissions misleads)


def recent_time_to_admit(*, room: Room) -> float | None:
    """The median seconds from knock to admission over the room's recent admissions (the last
    two hours, newest 50), or ``None`` with fewer than 5: too little to estimate from. One
    indexed query, or none when ``lobby.cache`` holds it (the embedded default: every knock
    reads it, only an admission or the clock changes it); the guest page multiplies it by the
    queue position."""
    from . import cache

    hit, value = cache.get_estimate(room.pk)
    if hit:
        return value
    since = clock.now() - timedelta(seconds=ESTIMATE_WINDOW)
    rows = list(
        EntryRequest.objects.filter(
            room=room, status=EntryRequest.Status.ADMITTED, resolved_at__gte=since
        )
        .order_by("-resolved_at")
        .values_list("requested_at", "resolved_at")[:ESTIMATE_SAMPLES]
    )
    return estimate_from(room=room, rows=rows)


def estimate_from(*, room: Room, rows: list[tuple[datetime, datetime | None]]) -> float | None:
    """``recent_time_to_admit`` from its rows, read by the caller (``(requested_at,
    resolved_at)`` of the newest ``ESTIMATE_SAMPLES`` admissions in the window; ``rows_subquery``
    reads them inside another statement), and kept in ``lobby.cache`` as it does. Call it
    outside a transaction (the cache keeps nothing read inside one)."""
    from . import cache

    if len(rows) < ESTIMATE_MIN_SAMPLES:
        cache.put_estimate(room.pk, None)  # rows only leave the window: still too few
        return None
    waits = [max(0.0, (done - asked).total_seconds()) for asked, done in rows if done]
    estimate = percentile(waits, 50)
    # Valid until the oldest admission it counts leaves the window (or the next admission).
    oldest = min(done for _, done in rows if done is not None)
    cache.put_estimate(room.pk, estimate, until=oldest + timedelta(seconds=ESTIMATE_WINDOW))
    return estimate


def rows_subquery(*, room_id: Any, now: datetime) -> tuple[str, list[Any]]:
    """``recent_time_to_admit``'s query as a scalar subquery (one JSON array of ``[requested_at,
    resolved_at]``) for a caller that folds it into a statement of its own (the knock's read);
    ``rows_from`` turns its value into the rows ``estimate_from`` takes."""
    from django.db import connection

    from . import rawsql

    table = EntryRequest._meta.db_table
    pair = "json_build_array" if connection.vendor == "postgresql" else "json_array"
    agg = "json_agg" if connection.vendor == "postgresql" else "json_group_array"
    since = now - timedelta(seconds=ESTIMATE_WINDOW)
    sql = (
        f"(SELECT {agg}({pair}(e.requested_at, e.resolved_at)) FROM "  # noqa: S608 - bound values
        f'(SELECT "requested_at", "resolved_at" FROM "{table}" WHERE "room_id" = %s '
        """AND "status" = 'admitted' AND "resolved_at" >= %s """
        'ORDER BY "resolved_at" DESC LIMIT %s) AS e)'
    )
    params = [
        rawsql.db_value(rawsql.field(EntryRequest, "room"), room_id),
        rawsql.db_value(rawsql.field(EntryRequest, "resolved_at"), since),
        ESTIMATE_SAMPLES,
    ]
    return sql, params


def rows_from(value: Any) -> list[tuple[datetime, datetime | None]]:
    """``rows_subquery``'s value as rows (PostgreSQL's JSON has ISO times, SQLite's its text)."""
    import json

    from . import rawsql

    if isinstance(value, str):
        value = json.loads(value)
    return [
        (_when(asked, rawsql), _when(done, rawsql) if done is not None else None)
        for asked, done in value or []
    ]


def _when(text: str, rawsql: Any) -> datetime:
    if "T" in text:  # PostgreSQL's JSON: ISO 8601 with the offset
        return datetime.fromisoformat(text)
    when: datetime = rawsql.when(text)
    return when
