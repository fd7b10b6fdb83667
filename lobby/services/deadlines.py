"""The sweeper: every stored deadline enforced, idempotently, in every process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from .. import clock, events, extensions
from ..models import EntryRequest, ModeratorSocket, Participant, ServerProcess
from ..ops import metrics
from ..webhooks.alerts import alerts_sweep
from .outcomes import announce_cancel, mark_canceled
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

    Each step is its own short transaction and each transition a conditional update, so a
    timeout fires exactly once whichever sweeper gets there first. In order: dead processes'
    sockets count as disconnected from their last heartbeat; knocks past their deadline time
    out; knocks whose socket has been gone longer than the grace are canceled; presences away
    longer than the grace leave; then the registered sweepers (breakout timers) and the
    unattended-knock notices.
    """
    now = clock.now()
    if server_id:
        server_heartbeat(server_id=server_id)
    since = now - timedelta(seconds=settings.ANTEROOM_DISCONNECT_GRACE)
    res = SweepResult()
    res.dead_servers = _sweep_dead_servers(now)
    res.timed_out = _cancel_pending(
        EntryRequest.objects.filter(status="pending", expires_at__lte=now), "timeout", now
    )
    res.disconnected = _cancel_pending(
        EntryRequest.objects.filter(status="pending", disconnected_at__lte=since),
        "disconnected",
        now,
    )
    res.left = _sweep_away(since, now)
    res.extensions = extensions.run_sweepers(now=now)
    res.notices = alerts_sweep(now=now)
    metrics.swept()
    return res


# At most this many rows per step and sweep: a backlog drains over a few seconds instead of one
# long transaction holding the writer lock.
SWEEP_BATCH = 500


@transaction.atomic
def _cancel_pending(pending: QuerySet[EntryRequest], reason: str, now: Any) -> int:
    """Cancel (up to ``SWEEP_BATCH`` of) these pending knocks with ``reason``; each guest hears
    its one outcome. Returns how many this call canceled."""
    done = [r for r in pending[:SWEEP_BATCH] if mark_canceled(r, reason=reason, now=now)]
    if done:
        announce_cancel(done, now)
    return len(done)


@transaction.atomic
def _sweep_away(since: Any, now: Any) -> int:
    """Presences whose socket closed before ``since`` leave (``participant-left``)."""
    away = Participant.objects.filter(disconnected_at__lte=since).exclude(status="left")
    return mark_left(list(away[:SWEEP_BATCH]), now, reason="disconnected")


@transaction.atomic
def _sweep_dead_servers(now: Any) -> int:
    """Processes whose heartbeat stopped: their sockets count as disconnected from their last
    heartbeat (``_server_lost``). Returns how many this call handled."""
    dead = ServerProcess.objects.filter(heartbeat_at__lt=now - timedelta(seconds=SERVER_DEAD_AFTER))
    handled = 0
    for s in list(dead):
        # Whoever deletes the row handles the dead process, so its events go out once.
        if ServerProcess.objects.filter(pk=s.pk, heartbeat_at=s.heartbeat_at).delete()[0]:
            _server_lost(s)
            handled += 1
    return handled


def _server_lost(s: ServerProcess) -> None:
    """Mark the knocks and presences held by the dead process ``s`` disconnected at its last
    heartbeat; a moderator whose other tabs are on live processes stays connected through them."""
    # Locked: a guest re-attaching on a live process meanwhile must not be marked lost
    # (PostgreSQL re-checks the filter once the resume commits, and skips the row).
    lost = list(
        EntryRequest.objects.select_for_update().filter(
            server_id=s.server_id, status="pending", disconnected_at__isnull=True
        )
    )
    EntryRequest.objects.filter(pk__in=[r.pk for r in lost]).update(disconnected_at=s.heartbeat_at)
    for r in lost:
        r.disconnected_at = s.heartbeat_at
        events.entry_updated(r)  # moderators see the guest as disconnected
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
