"""Moderator actions on people (services): remove a participant, send one back to the waiting
room. Same rules as ``services``: one transaction, locked rows, events after commit, every
surface (socket, dashboard form) calls these.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import transaction

from . import clock, events, services
from .errors import InvalidPermissions, ParticipantNotFound, ParticipantRemoved
from .models import EntryRequest, Participant, Role, Room


def _present(room: Room, participant_id: str) -> Participant:
    """The participant's presence, locked; refuses moderators (revoke their link instead)."""
    p = (
        Participant.objects.select_for_update()
        .filter(room=room, participant_id=participant_id)
        .exclude(status=Participant.Status.LEFT)
        .first()
    )
    if p is None:
        raise ParticipantNotFound()
    if p.role == Role.MODERATOR:
        raise InvalidPermissions("A moderator cannot be removed or sent to the waiting room.")
    return p


@transaction.atomic
def participant_remove(*, room: Room, actor: services.Actor, participant_id: str) -> Participant:
    """Remove a participant from the room now.

    Their socket gets ``PARTICIPANT_REMOVED`` and closes (4403); members hear
    ``participant-left``; moderators get an ``activity`` item (``removed``, by whom). The
    presence ends; a guest who knocks again is a new knock for a moderator to decide (a direct
    token still enters: revoke it to keep its holder out). Raises ``InvalidPermissions``,
    ``ParticipantNotFound``.
    """
    services.require_moderator(actor)
    p = _present(room, participant_id)
    err = ParticipantRemoved()
    events.send_on_commit(
        events.participant_group(room.pk, p.participant_id),
        events.error_frame(err.code, err.message),
        action="close",
        close_code=err.close_code,
    )
    services._mark_left([p], clock.now(), reason="removed", by=actor.by)
    return p


@transaction.atomic
def participant_send_to_lobby(
    *, room: Room, actor: services.Actor, participant_id: str
) -> EntryRequest:
    """Send an admitted participant back to the waiting room (Zoom's "Put in waiting room").

    Locks the room (as knocks and bulk decisions do) and the presence. The presence ends
    (``participant-left`` to members, ``activity`` ``sent-to-lobby``) and a new pending knock
    is stored under the same participant id, name and resume key, waiting as long as their first
    knock could (the room's ``knock_ttl`` if there was none). Moderators get ``entry-requested``;
    the participant's socket becomes a waiting guest's (``waiting``, then ``queue-position``) and
    hears nothing more about the room. Admitting it again is an ordinary admission. Raises
    ``InvalidPermissions``, ``ParticipantNotFound``.
    """
    services.require_moderator(actor)
    now = clock.now()
    services._lock_lobby(room.pk)
    p = _present(room, participant_id)
    before = (
        EntryRequest.objects.filter(room=room, participant_id=p.participant_id)
        .order_by("-requested_at")
        .first()
    )
    ttl = (
        max(10, int((before.expires_at - before.requested_at).total_seconds()))
        if before is not None
        else room.knock_ttl
    )
    services._mark_left([p], now, reason="lobby", by=actor.by)
    r = EntryRequest.objects.create(
        id=uuid.uuid4(),
        room=room,
        participant_id=p.participant_id,
        name=p.name,
        metadata=before.metadata if before is not None else {},
        role=p.role,
        requested_at=now,
        expires_at=now + timedelta(seconds=ttl),
        token_key=before.token_key if before is not None else "",
        token_jti=p.token_jti,
        token_expires_at=p.token_expires_at,
        browser_key=before.browser_key if before is not None else "",
        client_address=before.client_address if before is not None else "",
        resume_hash=p.resume_hash,
        server_id=p.server_id,
        connection_id=p.connection_id,
        disconnected_at=p.disconnected_at,
    )
    events.entry_requested(r)
    events.queue_changed(room.pk)
    position, total = services._queue_place(r)
    waiting = {
        "type": "waiting",
        "request": events.guest_request_payload(r),
        "resume": None,  # the guest keeps the resume key it holds: it now resumes this knock
        "reason": "sent-to-lobby",
    }
    events.send_on_commit(
        events.participant_group(room.pk, p.participant_id),
        waiting,
        action="to-lobby",
        request_id=str(r.id),
        position=position,
        waiting=total,
    )
    from .audit import audit_record

    audit_record(room=room, actor=actor.by, action="to-lobby", request=r)
    return r
