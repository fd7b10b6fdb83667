"""The sweeper: every stored deadline enforced, idempotently, in every process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from .. import clock, events, extensions
from ..models import EntryRequest, ModeratorSocket, Participant, ServerProcess
from ..ops import metrics
from ..webhooks.alerts import alerts_sweep
from .outcomes import announce_cancel, finish
from .presence import mark_left


@dataclass
class SweepResult:
    timed_out: int = 0
    disconnected: int = 0
    left: int = 0
    dead_servers: int = 0
    # what each app's sweeper acted on, by name (lobby/extensions.py: sweepers)
    extensions: dict[str, int] = field(default_factory=dict)
    notices: int = 0


def server_heartbeat(*, server_id: str) -> None:
    now = clock.now()
    updated = ServerProcess.objects.filter(pk=server_id).update(heartbeat_at=now)
    if not updated:
        ServerProcess.objects.update_or_create(
            server_id=server_id, defaults={"started_at": now, "heartbeat_at": now}
        )


SERVER_DEAD_AFTER = 10


def sweep(*, server_id: str | None = None) -> SweepResult:
    """Enforce every stored deadline. Idempotent; safe in every process at once.

    Each transition is a conditional update, so a timeout fires exactly once whichever sweeper
    gets there first. Sockets held by a process whose heartbeat stopped count as disconnected
    from its last heartbeat.
    """
    res = SweepResult()
    now = clock.now()
    if server_id:
        server_heartbeat(server_id=server_id)
    grace = timedelta(seconds=settings.ANTEROOM_DISCONNECT_GRACE)
    with transaction.atomic():
        dead = list(
            ServerProcess.objects.filter(
                heartbeat_at__lt=now - timedelta(seconds=SERVER_DEAD_AFTER)
            )
        )
        for s in dead:
            # Whoever deletes the row handles the dead process, so its events go out once.
            if not ServerProcess.objects.filter(pk=s.pk, heartbeat_at=s.heartbeat_at).delete()[0]:
                continue
            # Locked: a guest re-attaching on a live process meanwhile must not be marked lost
            # (PostgreSQL re-checks the filter once the resume commits, and skips the row).
            lost = list(
                EntryRequest.objects.select_for_update().filter(
                    server_id=s.server_id, status="pending", disconnected_at__isnull=True
                )
            )
            EntryRequest.objects.filter(pk__in=[r.pk for r in lost]).update(
                disconnected_at=s.heartbeat_at
            )
            for r in lost:
                r.disconnected_at = s.heartbeat_at
                events.entry_updated(r)  # moderators see the guest as disconnected
            # A moderator whose other tabs are on live processes stays connected through them.
            ModeratorSocket.objects.filter(server_id=s.server_id).delete()
            elsewhere = {
                ms.participant_id: ms
                for ms in ModeratorSocket.objects.filter(
                    participant__server_id=s.server_id, participant__disconnected_at__isnull=True
                ).order_by("opened_at")
            }
            for pk, ms in elsewhere.items():
                Participant.objects.filter(pk=pk).update(
                    server_id=ms.server_id, connection_id=ms.connection_id
                )
            Participant.objects.filter(server_id=s.server_id, disconnected_at__isnull=True).exclude(
                status="left"
            ).exclude(pk__in=list(elsewhere)).update(disconnected_at=s.heartbeat_at)
            res.dead_servers += 1
    with transaction.atomic():
        expired = list(EntryRequest.objects.filter(status="pending", expires_at__lte=now)[:500])
        done = [
            r
            for r in expired
            if finish(r, status="canceled", cancel_reason="timeout", by="", now=now)
        ]
        res.timed_out = len(done)
        if done:
            announce_cancel(done, now)
    with transaction.atomic():
        gone = list(
            EntryRequest.objects.filter(status="pending", disconnected_at__lte=now - grace)[:500]
        )
        done = [
            r
            for r in gone
            if finish(r, status="canceled", cancel_reason="disconnected", by="", now=now)
        ]
        res.disconnected = len(done)
        if done:
            announce_cancel(done, now)
    with transaction.atomic():
        away = list(
            Participant.objects.filter(disconnected_at__lte=now - grace).exclude(status="left")[
                :500
            ]
        )
        res.left = mark_left(away, now, reason="disconnected")
    res.extensions = extensions.run_sweepers(now=now)
    res.notices = alerts_sweep(now=now)
    metrics.swept()
    return res
