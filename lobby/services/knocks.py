"""The waiting room: knock (or re-attach), rename, cancel, socket lost."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q

from .. import analytics, cache, clock, events, rawsql, webhooks
from ..audit import audit_event
from ..errors import AccessDenied, BadRequest, EntryTimeout, JoinRaced
from ..models import AuditEvent, EntryRequest, Room
from ..ops import metrics
from ..webhooks import outbox
from . import appointments
from .access import Connection, JoinPlan
from .inputs import clean_metadata, clean_name
from .keys import hash_secret, new_resume_key
from .locks import lock_knock, lock_lobby
from .outcomes import announce_cancel, close_replaced, get_request, mark_canceled
from .quotas import KnockLimit, knock_limits, limit_subquery, refuse_over_limit


@dataclass
class Waiting:
    request: EntryRequest
    resume: str
    position: int
    total: int
    # The room's recent median seconds per admitted guest (``analytics.recent_time_to_admit``),
    # filled by ``entry_request_knock_for_socket``; None: too few admissions to say.
    seconds_per_guest: float | None = None


def queue_place(r: EntryRequest) -> tuple[int, int]:
    """(position, waiting) of a pending knock in its room's queue: one counting query, not the
    N ids of the queue (``events.queue_order`` reads those once per broadcast)."""
    counts = EntryRequest.objects.filter(
        room_id=r.room_id, status=EntryRequest.Status.PENDING
    ).aggregate(
        total=Count("pk"),
        ahead=Count("pk", filter=Q(requested_at__lt=r.requested_at)),
    )
    return counts["ahead"] + 1, max(counts["total"], counts["ahead"] + 1)


def entry_request_knock(*, plan: JoinPlan, conn: Connection, metadata: Any = None) -> Waiting:
    """Store a knock (``_knock_create``) or re-attach a resumed one (``_knock_reattach``).

    Locks the room row, so knocks of one room serialise and rate limits cannot be raced.
    Emits ``entry-requested`` (``entry-updated`` on re-attach) to moderators and the queue order
    to waiting guests. Raises ``AccessDenied`` for a plan that does not wait in the lobby,
    ``BadRequest``, ``EntryRateLimited``, ``EntryTimeout`` (a resumed knock that expired),
    ``JoinRaced`` (a resumed knock decided or canceled after ``join_plan`` read it).
    """
    return _knock(plan=plan, conn=conn, metadata=metadata, estimate=False)[0]


@transaction.atomic
def _knock(
    *, plan: JoinPlan, conn: Connection, metadata: Any, estimate: bool
) -> tuple[Waiting, list[Any] | None]:
    """``entry_request_knock``; with ``estimate`` it also returns the rows of the wait estimate
    (``analytics.rows_subquery``), read in the knock's own read (None: not read)."""
    if plan.level != "lobby" or plan.request_id is None:
        raise AccessDenied()
    now = clock.now()
    resume = new_resume_key()
    admissions = None
    if plan.resume_request is not None:
        lock_lobby(plan.room.pk)
        r = _knock_reattach(plan.request_id, conn=conn, now=now, resume=resume)
        position, total = queue_place(r)
    else:
        r, (position, total), admissions = _knock_create(
            plan,
            plan.request_id,
            conn=conn,
            now=now,
            resume=resume,
            metadata=metadata,
            estimate=estimate,
        )
    events.queue_changed(plan.room.pk)
    return Waiting(request=r, resume=resume, position=position, total=total), admissions


def entry_request_knock_for_socket(
    *, plan: JoinPlan, conn: Connection, metadata: Any = None
) -> Waiting:
    """``entry_request_knock``, then, after its commit and in the same call, the wait estimate
    the socket tells the guest: one hop to the ORM thread per knock instead of two. Unless
    ``lobby.cache`` holds the estimate, its rows are read in the knock's own read (no query
    of their own: admissions do not change under the knock's locks, on SQLite none can commit
    meanwhile)."""
    hit, cached = cache.get_estimate(plan.room.pk)
    waiting, admissions = _knock(plan=plan, conn=conn, metadata=metadata, estimate=not hit)
    if hit:
        waiting.seconds_per_guest = cached
    elif admissions is not None:
        waiting.seconds_per_guest = analytics.estimate_from(room=plan.room, rows=admissions)
    else:  # a resumed knock: no read of its own
        waiting.seconds_per_guest = analytics.recent_time_to_admit(room=plan.room)
    return waiting


def _knock_reattach(
    request_id: uuid.UUID, *, conn: Connection, now: Any, resume: str
) -> EntryRequest:
    """A resumed knock moves to this socket: a new resume key, the same id and deadline. A
    socket still waiting with it (the key re-used while it is open) is replaced: one live socket
    per guest, so only the new one hears the outcome."""
    changed = EntryRequest.objects.filter(
        pk=request_id, status=EntryRequest.Status.PENDING, expires_at__gt=now
    ).update(
        resume_hash=hash_secret(resume),
        server_id=conn.server_id,
        connection_id=conn.connection_id,
        disconnected_at=None,
    )
    if changed != 1:
        status = EntryRequest.objects.filter(pk=request_id).values_list("status", flat=True).first()
        if status is not None and status != EntryRequest.Status.PENDING:
            # Decided or canceled after join_plan read it (a moderator admitted or denied it
            # while the guest reconnected): plan again, which tells the real outcome.
            raise JoinRaced()
        raise EntryTimeout()
    r = EntryRequest.objects.get(pk=request_id)
    close_replaced(events.request_group(r.id), conn.connection_id)
    events.entry_updated(r)
    return r


def _knock_create(
    plan: JoinPlan,
    request_id: uuid.UUID,
    *,
    conn: Connection,
    now: Any,
    resume: str,
    metadata: Any,
    estimate: bool,
) -> tuple[EntryRequest, tuple[int, int], list[Any] | None]:
    """A new knock, after the rate limits; it replaces the guest's own pending knock from an
    older socket. Audited, counted, a ``knock.created`` webhook. Returns it and its place.

    The transaction's statements (pinned by tests/lobby/test_query_counts*.py): the locks
    (PostgreSQL: the room and the rate-limit key, one statement; SQLite: ``BEGIN IMMEDIATE``),
    then one read of everything the knock decides on (``_read_before_knock``), then the insert
    of the knock and its audit row (one statement on PostgreSQL) — plain SQL, as the ORM would
    write them (``lobby/rawsql.py``)."""
    metadata = clean_metadata(metadata)
    limit_key, limits = knock_limits(plan=plan, conn=conn)
    lock_knock(plan.room.pk, limit_key)
    # An appointment window may refuse the knock (before anything is stored) or set a later
    # deadline than the ttl (services/appointments.py).
    expires_at = appointments.knock_deadline(
        room=plan.room, now=now, ttl=plan.ttl or plan.room.knock_ttl
    )
    reads = _read_before_knock(plan, limits, now=now, estimate=estimate)
    for limit, nth_newest in zip(limits, reads.nth_newest, strict=True):
        refuse_over_limit(limit, nth_newest, now=now)
    if reads.own_pending:
        _replace_own_knocks(plan, now=now)
    r = EntryRequest(
        id=request_id,
        room=plan.room,
        participant_id=plan.participant_id,
        name=plan.name,
        metadata=metadata,
        role=plan.role,
        requested_at=now,
        expires_at=expires_at,
        token_key=plan.claims.key if plan.claims else "",
        token_jti=plan.token_jti,
        token_expires_at=plan.token_expires_at,
        browser_key=conn.browser_key if plan.claims is None else "",
        client_address=conn.client_address,
        resume_hash=hash_secret(resume),
        server_id=conn.server_id,
        connection_id=conn.connection_id,
    )
    _insert_with_audit(
        r, audit_event(room=plan.room, actor=r.participant_id, action="knock", request=r)
    )
    events.entry_requested(r)
    webhooks.emit(
        "knock.created",
        room=plan.room,
        data={"request": webhooks.request_data(r)},
        endpoints=reads.endpoints,
    )
    metrics.knocked()
    if reads.own_pending:
        # A replaced knock left the queue: count again (rare).
        return r, queue_place(r), reads.admissions
    # The queue before this knock, and this knock last (it is the newest).
    return r, (reads.ahead + 1, max(reads.waiting + 1, reads.ahead + 1)), reads.admissions


@dataclass
class _Reads:
    waiting: int  # pending knocks of the room
    ahead: int  # of which requested before now
    own_pending: int  # the guest's own pending knocks here (0 for a made-up id)
    nth_newest: list[Any]  # per limit: ``quotas.limit_subquery``'s value
    endpoints: list[Any] | None  # the active webhook endpoints, if not cached
    admissions: list[Any] | None  # the wait estimate's rows, if asked for


def _read_before_knock(
    plan: JoinPlan, limits: list[KnockLimit], *, now: Any, estimate: bool
) -> _Reads:
    """One SELECT, under the locks and in a statement after them: the room's queue (for the
    knock's place), the guest's own pending knock, each rate limit's count, unless cached the
    active webhook endpoints and, with ``estimate``, the wait estimate's rows."""
    table = EntryRequest._meta.db_table
    room = rawsql.db_value(rawsql.field(EntryRequest, "room"), plan.room.pk)
    columns, params = [], []
    for limit in limits:
        sql, values = limit_subquery(limit, now=now)
        columns.append(sql)
        params += values
    if not plan.fresh_id:
        columns.append(
            # Identifiers from the model, values bound as parameters (here and below).
            f'(SELECT count(*) FROM "{table}" WHERE "room_id" = %s AND "participant_id" = %s '  # noqa: S608
            "AND \"status\" = 'pending')"
        )
        params += [room, plan.participant_id]
    generation = cache.endpoints_generation()
    endpoints = cache.get_endpoints()
    if endpoints is None:
        columns.append(outbox.endpoints_subquery())
    if estimate:
        sql, values = analytics.rows_subquery(room_id=plan.room.pk, now=now)
        columns.append(sql)
        params += values
    params += [rawsql.db_value(rawsql.field(EntryRequest, "requested_at"), now), room]
    sql = (
        f"SELECT q.waiting, q.ahead{''.join(', ' + c for c in columns)} FROM "  # noqa: S608
        f'(SELECT count(*) AS waiting, count(CASE WHEN "requested_at" < %s THEN 1 END) AS ahead '
        f'FROM "{table}" WHERE "room_id" = %s AND "status" = \'pending\') AS q'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = list(cursor.fetchone())
    waiting, ahead = row[0], row[1]
    nth_newest = row[2 : 2 + len(limits)]
    rest = row[2 + len(limits) :]
    own_pending = 0 if plan.fresh_id else rest.pop(0)
    if endpoints is None:
        endpoints = outbox.endpoints_from(rest.pop(0), generation=generation)
    admissions = analytics.rows_from(rest.pop(0)) if estimate else None
    return _Reads(waiting, ahead, own_pending, nth_newest, endpoints, admissions)


def _insert_with_audit(r: EntryRequest, audit: AuditEvent) -> None:
    """Write the knock and its audit row: one statement on PostgreSQL (the knock's INSERT in a
    ``WITH``), two on SQLite."""
    knock = rawsql.insert_statement(EntryRequest)
    audited = rawsql.insert_statement(AuditEvent)
    knock_values = rawsql.row_values(r, knock)
    audit_values = rawsql.row_values(audit, audited)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH knock AS ({knock.sql}) {audited.sql}", knock_values + audit_values
            )
        else:
            cursor.execute(knock.sql, knock_values)
            cursor.execute(audited.sql, audit_values)
    rawsql.saved(r)
    rawsql.saved(audit)


def _replace_own_knocks(plan: JoinPlan, *, now: Any) -> None:
    """A guest who knocks again from a new socket replaces their own pending knock (one whose
    id was made up for this knock has none): moderators drop the old row, the old socket hears
    it was canceled."""
    if plan.fresh_id:
        return
    old = EntryRequest.objects.filter(
        room=plan.room, participant_id=plan.participant_id, status=EntryRequest.Status.PENDING
    )
    replaced = [o for o in old if mark_canceled(o, reason="aborted", now=now)]
    if replaced:
        announce_cancel(replaced, now)


@transaction.atomic
def entry_request_cancel(*, room: Room, request_id: Any, reason: str = "aborted") -> bool:
    """Cancel a pending request (guest's Cancel, a lost socket after grace, a timeout).

    Emits ``entry-canceled`` to moderators; the guest gets ``canceled`` (aborted) or
    ``ENTRY_TIMEOUT`` (timeout). Idempotent: returns False if it was no longer pending.
    """
    r = get_request(room, request_id)
    now = clock.now()
    if not mark_canceled(r, reason=reason, now=now):
        return False
    announce_cancel([r], now)
    return True


@transaction.atomic
def entry_request_rename(*, request_id: uuid.UUID, name: Any) -> EntryRequest:
    """A waiting guest changes its name; moderators hear ``entry-updated``."""
    name = clean_name(name)
    if not name:
        raise BadRequest("name must not be empty.")
    changed = EntryRequest.objects.filter(pk=request_id, status="pending").update(name=name)
    r = EntryRequest.objects.get(pk=request_id)
    if changed:
        events.entry_updated(r)
    return r


@transaction.atomic
def entry_request_disconnected(*, request_id: uuid.UUID, connection_id: str) -> None:
    """The guest's socket closed: start the grace period (unless another socket took over)."""
    now = clock.now()
    changed = EntryRequest.objects.filter(
        pk=request_id, status="pending", connection_id=connection_id, disconnected_at__isnull=True
    ).update(disconnected_at=now)
    if changed:
        events.entry_updated(EntryRequest.objects.get(pk=request_id))
