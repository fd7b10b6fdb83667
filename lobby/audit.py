"""The audit trail, written inside the same transaction as the change it records, and its
retention (``manage.py purge``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q, QuerySet

from . import clock

if TYPE_CHECKING:
    from .models import AuditEvent, EntryRequest, Room


def _written[**P](make: Callable[P, AuditEvent]) -> Callable[P, None]:
    """``audit_record``: what ``make`` builds, written in the caller's transaction."""

    def write(*args: P.args, **kwargs: P.kwargs) -> None:
        from . import rawsql

        rawsql.insert(make(*args, **kwargs))

    write.__doc__ = """Write one audit row in the caller's transaction (one INSERT:
    ``lobby/rawsql.py``); the arguments are ``audit_event``'s."""
    return write


def audit_event(
    *,
    action: str,
    actor: str,
    room: Room | None = None,
    room_id: uuid.UUID | None = None,
    request: EntryRequest | None = None,
    subject: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """The row ``audit_record`` writes, unsaved (a caller may write it with its own statement,
    as the knock does on PostgreSQL)."""
    from .models import AuditEvent, Room

    if room is None and room_id is not None:
        room = Room.objects.filter(pk=room_id).first()
    return AuditEvent(
        room=room,
        room_name=room.name if room else "",
        at=clock.now(),
        actor=actor,
        action=action,
        request_id=request.id if request else None,
        subject=request.participant_id if request else subject,
        data=data or {},
    )


audit_record = _written(audit_event)


def audit_decisions(*, room: Room, actor: str, action: str, requests: list[EntryRequest]) -> None:
    """One audit row per decided request, written with one bulk insert (admit-all of 1,000)."""
    from .models import AuditEvent

    at = clock.now()
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                room=room,
                room_name=room.name,
                at=at,
                actor=actor,
                action=action,
                request_id=r.id,
                subject=r.participant_id,
                data={"reason": r.deny_reason} if r.deny_reason else {},
            )
            for r in requests
        ],
        batch_size=500,
    )


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    entry_requests: int
    audit_events: int
    participants: int = 0
    participant_cutoff: datetime | None = None


def _delete_in_batches(qs: QuerySet[Any], batch: int = 2000) -> int:
    """Delete in short transactions, so live knocks never wait behind one long purge."""
    total = 0
    while True:
        with transaction.atomic():
            pks = list(qs.values_list("pk", flat=True)[:batch])
            if not pks:
                return total
            qs.model.objects.filter(pk__in=pks).delete()
        total += len(pks)


def retention_purge(
    *, days: int, participant_days: int | None = None, dry_run: bool = False
) -> PurgeResult:
    """Delete resolved entry requests and audit rows older than ``days``, and participants who
    left more than ``participant_days`` ago (default ``days``) — ``manage.py purge``.

    Pending requests are never deleted, whatever their age (the sweeper resolves them first);
    participants still present (active, paused, or disconnected within the grace) never are.
    With ``dry_run`` only counts. Returns the cutoffs and the counts.
    """
    from .models import AuditEvent, EntryRequest, Participant

    if participant_days is None:
        participant_days = days
    if days < 0 or participant_days < 0:
        raise ValueError("days must not be negative")
    cutoff = clock.now() - timedelta(days=days)
    left_before = clock.now() - timedelta(days=participant_days)
    departed = Participant.objects.filter(status=Participant.Status.LEFT, left_at__lt=left_before)
    requests = EntryRequest.objects.exclude(status=EntryRequest.Status.PENDING).filter(
        Q(resolved_at__lt=cutoff) | Q(resolved_at__isnull=True, requested_at__lt=cutoff)
    )
    rows = AuditEvent.objects.filter(at__lt=cutoff)
    if dry_run:
        return PurgeResult(cutoff, requests.count(), rows.count(), departed.count(), left_before)
    return PurgeResult(
        cutoff,
        _delete_in_batches(requests),
        _delete_in_batches(rows),
        _delete_in_batches(departed),
        left_before,
    )
