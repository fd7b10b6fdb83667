"""How a help request leaves ``pending`` (answered, cleared, expired) and who is told, shared by
the modules that move people and by the sweeper."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction

from lobby import clock

from .. import events
from ..events import Outbox
from ..models import HelpRequest

HelpStatus = HelpRequest.Status


def resolve_help(
    requests: Iterable[HelpRequest], status: str, *, by: str, now: datetime, out: Outbox
) -> int:
    """End pending help requests (conditional update: each ends once) and tell moderators and
    each asker ``breakout-help-resolved``."""
    done = 0
    for h in requests:
        if not HelpRequest.objects.filter(pk=h.pk, status=HelpStatus.PENDING).update(
            status=status, resolved_by=by, resolved_at=now
        ):
            continue
        h.status, h.resolved_by, h.resolved_at = status, by, now
        frame = events.breakout_help_resolved(h)
        out.to_mods(h.parent_id, frame)
        out.to_participant(h.parent_id, h.participant_id, frame)
        done += 1
    return done


def clear_help(parent_id: uuid.UUID, participant_ids: Iterable[str], out: Outbox) -> None:
    """Participants left their breakout room (or the room): their pending requests end."""
    ids = list(participant_ids)
    if not ids:
        return
    pending = HelpRequest.objects.filter(
        parent_id=parent_id, participant_id__in=ids, status=HelpStatus.PENDING
    )
    resolve_help(list(pending), HelpStatus.CLEARED, by="", now=clock.now(), out=out)


def help_requests_sweep(*, now: datetime) -> int:
    """Expire pending help requests past ``expires_at`` (every process's sweeper; each ends
    once). Returns how many."""
    due = list(HelpRequest.objects.filter(status=HelpStatus.PENDING, expires_at__lte=now)[:500])
    if not due:
        return 0
    with transaction.atomic():
        out = Outbox()
        n = resolve_help(due, HelpStatus.EXPIRED, by="", now=now, out=out)
        out.flush()
    return n
