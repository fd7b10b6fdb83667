"""Moderator actions on people: remove a participant, send one back to the waiting room, the
waiting room's messages. Same rules as the other service modules: one transaction, locked rows,
events after commit, every surface (socket, dashboard form) calls these.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import transaction
from django.utils.translation import gettext_noop

from .. import clock, events, frames
from ..audit import audit_record
from ..errors import (
    BadRequest,
    InvalidPermissions,
    ParticipantNotFound,
    ParticipantRemoved,
    RequestNotFound,
)
from ..instructions import Close, Deliver, ToLobby
from ..models import EntryRequest, Participant, Role, Room
from .actors import Actor, require_moderator
from .knocks import queue_place
from .locks import lock_lobby
from .presence import mark_left


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
        raise InvalidPermissions(
            gettext_noop("A moderator cannot be removed or sent to the waiting room.")
        )
    return p


@transaction.atomic
def participant_remove(*, room: Room, actor: Actor, participant_id: str) -> Participant:
    """Remove a participant from the room now.

    Their socket gets ``PARTICIPANT_REMOVED`` and closes (4403); members hear
    ``participant-left``; moderators get an ``activity`` item (``removed``, by whom). The
    presence ends; a guest who knocks again is a new knock for a moderator to decide (a direct
    token still enters: revoke it to keep its holder out). Raises ``InvalidPermissions``,
    ``ParticipantNotFound``.
    """
    require_moderator(actor)
    p = _present(room, participant_id)
    events.send_on_commit(
        events.participant_group(room.pk, p.participant_id), Close.for_error(ParticipantRemoved())
    )
    mark_left([p], clock.now(), reason="removed", by=actor.by)
    return p


@transaction.atomic
def participant_send_to_lobby(*, room: Room, actor: Actor, participant_id: str) -> EntryRequest:
    """Send an admitted participant back to the waiting room (Zoom's "Put in waiting room").

    Locks the room (as knocks and bulk decisions do) and the presence. The presence ends
    (``participant-left`` to members, ``activity`` ``sent-to-lobby``) and a new pending knock
    is stored under the same participant id, name and resume key, waiting as long as their first
    knock could (the room's ``knock_ttl`` if there was none). Moderators get ``entry-requested``;
    the participant's socket becomes a waiting guest's (``waiting``, then ``queue-position``) and
    hears nothing more about the room. Admitting it again is an ordinary admission. Raises
    ``InvalidPermissions``, ``ParticipantNotFound``.
    """
    require_moderator(actor)
    now = clock.now()
    lock_lobby(room.pk)
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
    mark_left([p], now, reason="lobby", by=actor.by)
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
    position, total = queue_place(r)
    # The guest keeps the resume key it holds: it now resumes this knock.
    waiting = frames.waiting(r, resume=None, reason="sent-to-lobby")
    events.send_on_commit(
        events.participant_group(room.pk, p.participant_id),
        ToLobby(frames=[waiting], request_id=str(r.id), position=position, waiting=total),
    )
    audit_record(room=room, actor=actor.by, action="to-lobby", request=r)
    return r


# Messages to the waiting room --------------------------------------------------------------

MAX_MESSAGE_CHARS = 300
MAX_EXTEND_MINUTES = 60


def _clean_message(text: str) -> str:
    text = " ".join(text.split())  # one line: no control characters, no layout tricks
    if len(text) > MAX_MESSAGE_CHARS:
        raise BadRequest(f"text must be at most {MAX_MESSAGE_CHARS} characters.")
    return text


@transaction.atomic
def lobby_message_set(
    *, room: Room, actor: Actor, text: str, extend_minutes: int = 0
) -> tuple[Room, int]:
    """Set (or clear, with ``""``) the message everyone waiting sees, and optionally give every
    waiting guest ``extend_minutes`` more (0-60). Returns the room and how many deadlines moved.

    Waiting guests get ``{"type": "lobby-message", "text"}`` (and, extended,
    ``{"type": "deadline-extended", "expires_at"}`` each); moderators get the same
    ``lobby-message``. Guests learn the text, nothing else. Raises ``InvalidPermissions``,
    ``BadRequest``.
    """
    require_moderator(actor)
    text = _clean_message(text)
    if not 0 <= extend_minutes <= MAX_EXTEND_MINUTES:
        raise BadRequest(f"extend_minutes must be from 0 to {MAX_EXTEND_MINUTES}.")
    now = clock.now()
    lock_lobby(room.pk)
    room = Room.objects.select_for_update().get(pk=room.pk)
    room.lobby_message = text
    room.save(update_fields=["lobby_message"])
    frame = frames.lobby_message(text)
    events.deliver_on_commit(events.lobby_group(room.pk), frame)
    events.deliver_on_commit(events.mods_group(room.pk), frame)
    moved = 0
    if extend_minutes:
        pending = list(
            EntryRequest.objects.select_for_update().filter(
                room=room, status=EntryRequest.Status.PENDING, expires_at__gt=now
            )
        )
        for r in pending:
            r.expires_at += timedelta(minutes=extend_minutes)
        EntryRequest.objects.bulk_update(pending, ["expires_at"], batch_size=500)
        moved = len(pending)
        events.send_many_on_commit(
            [
                (
                    events.request_group(r.id),
                    Deliver(frames=[frames.deadline_extended(r.expires_at)]),
                )
                for r in pending
            ]
        )
        for r in pending:
            events.entry_updated(r)  # moderators' rows show the new time left
    audit_record(
        room=room,
        actor=actor.by,
        action="lobby-message",
        data={"length": len(text), "extend_minutes": extend_minutes, "extended": moved},
    )
    return room, moved


@transaction.atomic
def entry_request_message(
    *, room: Room, actor: Actor, request_id: uuid.UUID, text: str
) -> EntryRequest:
    """A message to one waiting guest (``{"type": "host-message", "text"}`` to that guest only;
    kept on the knock, so a reload shows it). Raises ``InvalidPermissions``,
    ``RequestNotFound`` (also for a knock no longer pending), ``BadRequest``."""
    require_moderator(actor)
    text = _clean_message(text)
    if not text:
        raise BadRequest(gettext_noop("text must not be empty."))
    changed = EntryRequest.objects.filter(
        pk=request_id, room=room, status=EntryRequest.Status.PENDING
    ).update(host_message=text)
    if not changed:
        raise RequestNotFound(gettext_noop("That guest is no longer waiting."))
    r = EntryRequest.objects.get(pk=request_id)
    events.deliver_on_commit(events.request_group(r.id), frames.host_message(text))
    return r
