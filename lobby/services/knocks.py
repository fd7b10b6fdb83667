"""The waiting room: knock (or re-attach), rename, cancel, socket lost."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Q

from .. import analytics, clock, events, webhooks
from ..audit import audit_record
from ..errors import AccessDenied, BadRequest, EntryTimeout, JoinRaced
from ..models import EntryRequest, Room
from ..ops import metrics
from . import appointments
from .access import Connection, JoinPlan
from .inputs import clean_metadata, clean_name
from .keys import hash_secret, new_resume_key
from .locks import lock_lobby
from .outcomes import announce_cancel, close_replaced, get_request, mark_canceled
from .quotas import check_knock_limits


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


@transaction.atomic
def entry_request_knock(*, plan: JoinPlan, conn: Connection, metadata: Any = None) -> Waiting:
    """Store a knock (``_knock_create``) or re-attach a resumed one (``_knock_reattach``).

    Locks the room row, so knocks of one room serialise and rate limits cannot be raced.
    Emits ``entry-requested`` (``entry-updated`` on re-attach) to moderators and the queue order
    to waiting guests. Raises ``AccessDenied`` for a plan that does not wait in the lobby,
    ``BadRequest``, ``EntryRateLimited``, ``EntryTimeout`` (a resumed knock that expired),
    ``JoinRaced`` (a resumed knock decided or canceled after ``join_plan`` read it).
    """
    if plan.level != "lobby" or plan.request_id is None:
        raise AccessDenied()
    now = clock.now()
    lock_lobby(plan.room.pk)
    resume = new_resume_key()
    if plan.resume_request is not None:
        r = _knock_reattach(plan.request_id, conn=conn, now=now, resume=resume)
    else:
        r = _knock_create(
            plan, plan.request_id, conn=conn, now=now, resume=resume, metadata=metadata
        )
    events.queue_changed(plan.room.pk)
    position, total = queue_place(r)
    return Waiting(request=r, resume=resume, position=position, total=total)


def entry_request_knock_for_socket(
    *, plan: JoinPlan, conn: Connection, metadata: Any = None
) -> Waiting:
    """``entry_request_knock``, then, after its commit and in the same call, the wait estimate
    the socket tells the guest: one hop to the ORM thread per knock instead of two."""
    waiting = entry_request_knock(plan=plan, conn=conn, metadata=metadata)
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
) -> EntryRequest:
    """A new knock, after the rate limits; it replaces the guest's own pending knock from an
    older socket. Audited, counted, a ``knock.created`` webhook."""
    metadata = clean_metadata(metadata)
    # An appointment window may refuse the knock (before anything is stored) or set a later
    # deadline than the ttl (services/appointments.py).
    expires_at = appointments.knock_deadline(
        room=plan.room, now=now, ttl=plan.ttl or plan.room.knock_ttl
    )
    check_knock_limits(plan=plan, conn=conn, now=now)
    _replace_own_knocks(plan, now=now)
    r = EntryRequest.objects.create(
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
    events.entry_requested(r)
    webhooks.emit("knock.created", room=plan.room, data={"request": webhooks.request_data(r)})
    audit_record(room=plan.room, actor=r.participant_id, action="knock", request=r)
    metrics.knocked()
    return r


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
