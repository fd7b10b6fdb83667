"""Unattended knocks: after ``unattended_after`` seconds with a pending knock and no moderator
connected anywhere, the room's contacts are e-mailed and ``knock.unattended`` goes out; if
still nobody comes, ``escalate_after`` seconds later the escalation contacts are e-mailed (and
``knock.unattended`` again, ``notice.level`` ``escalated``).

Everything is in the database and read by the sweeper of every process:

* **Presence.** A moderator is connected when one of the room's moderator presences
  (``Participant``, also a staff user's dashboard) is neither left nor disconnected. Sockets of
  a process that died count as disconnected from its last heartbeat (the sweep marks them
  before this pass runs). The room has been unattended since the latest end of a moderator's
  presence (``disconnected_at``, else ``left_at``).
* **Deadlines.** ``KnockAlert.due_at`` is never later than when the next notice can be due;
  when a sweeper reaches it, it computes the real due time from the knock and the presence:
  ``max(requested_at, unattended since) + unattended_after`` for the notice,
  ``max(notice sent, unattended since) + escalate_after`` for the escalation. Not due yet: the
  deadline moves to it (or, a moderator being connected, by a whole period).
* **Once.** A notice is a conditional update of ``KnockAlert.level`` (0 → 1 → 2) in the
  transaction that writes its e-mail row and webhook deliveries; of two sweepers one wins.
  E-mails are an outbox too (``AlertEmail``), sent by the dispatcher with a lease.

A moderator arriving cancels what is not sent yet; the knock ending (admitted, denied,
canceled, timed out) cancels everything, as only pending knocks are read.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import F, Q
from django.urls import reverse

from lobby import clock
from lobby.models import AlertEmail, EntryRequest, KnockAlert, Participant, Role, RoomAlerts

from . import outbox

log = logging.getLogger("anteroom.alerts")

LEVELS = {1: "unattended", 2: "escalated"}
BATCH = 500


def moderator_presence(room_id: Any) -> tuple[bool, datetime | None]:
    """(a moderator is connected now, since when the room has had none)."""
    rows = Participant.objects.filter(room_id=room_id, role=Role.MODERATOR).values_list(
        "status", "disconnected_at", "left_at"
    )
    ends: list[datetime] = []
    for status, disconnected_at, left_at in rows:
        if status != Participant.Status.LEFT and disconnected_at is None:
            return True, None
        end = disconnected_at or left_at
        if end is not None:
            ends.append(end)
    return False, max(ends) if ends else None


def alerts_sweep(*, now: datetime) -> int:
    """Start tracking new knocks of rooms with alerts, then act on every deadline reached.
    Returns how many notices this call sent. Idempotent; safe in every process at once."""
    fresh = list(
        EntryRequest.objects.filter(
            status=EntryRequest.Status.PENDING,
            room__alerts__unattended_after__isnull=False,
            alert__isnull=True,
        ).values_list("pk", "room_id", "requested_at", "room__alerts__unattended_after")[:BATCH]
    )
    if fresh:
        KnockAlert.objects.bulk_create(
            [
                KnockAlert(
                    request_id=pk, room_id=room_id, due_at=at + timedelta(seconds=after or 0)
                )
                for pk, room_id, at, after in fresh
            ],
            ignore_conflicts=True,
        )
    due = list(
        KnockAlert.objects.filter(
            level__lt=2, due_at__lte=now, request__status=EntryRequest.Status.PENDING
        )
        .select_related("request", "room")
        .order_by("due_at")[:BATCH]
    )
    if not due:
        return 0
    settings_of = {
        a.room_id: a for a in RoomAlerts.objects.filter(room_id__in={d.room_id for d in due})
    }
    presence: dict[Any, tuple[bool, datetime | None]] = {}
    sent = 0
    for alert in due:
        cfg = settings_of.get(alert.room_id)
        if alert.room_id not in presence:
            presence[alert.room_id] = moderator_presence(alert.room_id)
        sent += _evaluate(alert, cfg, presence[alert.room_id], now)
    return sent


def _period(alert: KnockAlert, cfg: RoomAlerts | None) -> int | None:
    if cfg is None:
        return None
    return cfg.unattended_after if alert.level == 0 else cfg.escalate_after


def _evaluate(
    alert: KnockAlert, cfg: RoomAlerts | None, presence: tuple[bool, datetime | None], now: datetime
) -> int:
    period = _period(alert, cfg)
    base = KnockAlert.objects.filter(pk=alert.pk, level=alert.level, due_at=alert.due_at)
    if cfg is None or period is None:
        base.update(due_at=None)  # alerts turned off, or no escalation: nothing more is due
        return 0
    connected, since = presence
    if connected:
        base.update(due_at=now + timedelta(seconds=period))
        return 0
    start = alert.request.requested_at if alert.level == 0 else alert.unattended_at
    assert start is not None
    if since is not None and since > start:
        start = since
    when = start + timedelta(seconds=period)
    if when > now:
        base.update(due_at=when)
        return 0
    return _notify(alert, cfg, now, when=when)


@transaction.atomic
def _notify(alert: KnockAlert, cfg: RoomAlerts, now: datetime, *, when: datetime) -> int:
    """Send the next notice, due at ``when`` (stored as its time: the escalation counts from it,
    not from how late a sweeper got there)."""
    level = alert.level + 1
    waited = (now - alert.request.requested_at).total_seconds()
    stamp = {"unattended_at": when} if level == 1 else {"escalated_at": when}
    next_due = (
        when + timedelta(seconds=cfg.escalate_after)
        if level == 1 and cfg.escalate_after is not None
        else None
    )
    # The claim: of several sweepers, one moves the level.
    if not KnockAlert.objects.filter(pk=alert.pk, level=alert.level).update(
        level=F("level") + 1, due_at=next_due, **stamp
    ):
        return 0
    r = alert.request
    room = alert.room
    recipients = list(cfg.contacts if level == 1 else cfg.escalation_contacts)
    if recipients:
        AlertEmail.objects.create(
            request=r,
            room_name=room.name,
            level=level,
            recipients=recipients,
            subject=_subject(room.name, level),
            body=_body(room.name, r, level, waited),
            created_at=now,
            next_attempt_at=now,
        )
        from .doorbell import wake

        transaction.on_commit(wake)
    outbox.emit(
        "knock.unattended",
        room=room,
        data={
            "request": outbox.request_data(r),
            "notice": {
                "level": LEVELS[level],
                "waited_seconds": int(waited),
                "emailed": len(recipients),
            },
        },
    )
    from lobby.audit import audit_record

    audit_record(
        room=room,
        actor="system",
        action=f"knock-{LEVELS[level]}",
        request=r,
        data={"emailed": len(recipients)},
    )
    return 1


def _subject(room: str, level: int) -> str:
    if level == 1:
        return f"[Anteroom] A guest is waiting in {room} and no moderator is connected"
    return f"[Anteroom] Escalation: a guest is still waiting in {room}"


def _body(room: str, r: EntryRequest, level: int, waited: float) -> str:
    path = reverse("lobby:dashboard", args=[room])
    link = f"{settings.ANTEROOM_PUBLIC_URL}{path}"
    lines = [
        f"{r.name or 'A guest'} has been waiting {int(waited)} seconds to enter room {room},",
        "and no moderator is connected.",
        "" if level == 1 else "This is the escalation: the first notice went unanswered.",
        f"Admit or deny from the dashboard: {link}",
        f"The knock expires at {r.expires_at:%Y-%m-%d %H:%M:%S} UTC.",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def notices_for(request_ids: list[Any]) -> dict[str, dict[str, Any]]:
    """The notices sent for these knocks (the dashboard's waiting rows): {request id: {level,
    unattended_at, escalated_at}}."""
    out = {}
    for a in KnockAlert.objects.filter(request_id__in=request_ids, level__gt=0):
        out[str(a.request_id)] = {
            "level": LEVELS[a.level],
            "unattended_at": a.unattended_at,
            "escalated_at": a.escalated_at,
        }
    return out


# The e-mail outbox -----------------------------------------------------------------------------


def _free(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def claim_emails(*, owner: str, limit: int) -> list[AlertEmail]:
    now = clock.now()
    lease = now + timedelta(seconds=settings.ANTEROOM_WEBHOOK_LEASE)
    with transaction.atomic():
        qs = AlertEmail.objects.filter(status=AlertEmail.Status.PENDING, next_attempt_at__lte=now)
        qs = qs.filter(_free(now)).order_by("created_at")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        pks = list(qs.values_list("pk", flat=True)[:limit])
        got = [
            pk
            for pk in pks
            if AlertEmail.objects.filter(pk=pk, status=AlertEmail.Status.PENDING)
            .filter(_free(now))
            .update(lease_owner=owner, lease_until=lease, attempts=F("attempts") + 1)
        ]
    return list(AlertEmail.objects.filter(pk__in=got))


def send_email(m: AlertEmail, *, owner: str) -> bool:
    """Send one notice through Django's e-mail backend; retried like a webhook."""
    from .delivery import retry_delay

    try:
        EmailMessage(m.subject, m.body, settings.DEFAULT_FROM_EMAIL, list(m.recipients)).send()
    except Exception as exc:
        now = clock.now()
        gave_up = now - m.created_at >= timedelta(seconds=settings.ANTEROOM_WEBHOOK_RETRY_FOR)
        AlertEmail.objects.filter(pk=m.pk, lease_owner=owner, status="pending").update(
            status=AlertEmail.Status.FAILED if gave_up else AlertEmail.Status.PENDING,
            next_attempt_at=now + timedelta(seconds=retry_delay(m.attempts)),
            last_error=f"{type(exc).__name__}"[:300],
            lease_owner="",
            lease_until=None,
        )
        log.warning("alert e-mail %s failed (attempt %s): %s", m.pk, m.attempts, type(exc).__name__)
        return False
    AlertEmail.objects.filter(pk=m.pk, status="pending").update(
        status=AlertEmail.Status.SENT, sent_at=clock.now(), lease_owner="", lease_until=None
    )
    return True


def send_pending_emails(*, owner: str, limit: int = 100) -> int:
    """Send due e-mails in the calling thread (``manage.py sweep``, tests)."""
    done = 0
    for _ in range(limit):
        got = claim_emails(owner=owner, limit=1)
        if not got:
            break
        done += send_email(got[0], owner=owner)
    return done
