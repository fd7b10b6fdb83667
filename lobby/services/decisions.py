"""Moderators decide knocks: one, or all at once. The first decision wins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from .. import activity, cache, clock, events, frames, media, selectors, webhooks
from ..audit import audit_decisions
from ..errors import BadRequest, EntryDenied, RoomFull
from ..instructions import Admit, Close, Deliver, Instruction
from ..models import EntryRequest, Participant, Role, Room
from ..ops import metrics
from .actors import Actor, require_moderator
from .inputs import clean_name
from .locks import free_places, lock_lobby, present_ids
from .outcomes import announce_cancel, close_replaced, get_request, mark_canceled, mark_decided


@dataclass(frozen=True)
class Decision:
    request: EntryRequest
    outcome: str
    effective: bool


def _admit_rows(room: Room, admitted: list[EntryRequest], now: Any) -> list[Participant]:
    """Create (or replace) the presences of admitted guests; emit their events."""
    participants, replaced = _upsert_presences(room, admitted, now)
    _announce_admitted(room, admitted, participants, replaced)
    return participants


def _upsert_presences(
    room: Room, admitted: list[EntryRequest], now: Any
) -> tuple[list[Participant], set[str]]:
    """The admitted guests' presences, in bulk (admit-all of 1,000 is a few queries, not
    3,000): new rows, or the stored rows of their ids rewritten. Returns them, in the order of
    ``admitted``, and the ids that were present from another socket (now closed, ``REPLACED``)."""
    participants = []
    replaced: set[str] = set()
    existing = {
        p.participant_id: p
        for p in Participant.objects.filter(
            room=room, participant_id__in=[r.participant_id for r in admitted]
        )
    }
    to_create: list[Participant] = []
    to_update: list[Participant] = []
    for r in admitted:
        old = existing.get(r.participant_id)
        if (
            old is not None
            and old.status != Participant.Status.LEFT
            and old.connection_id != r.connection_id
        ):
            # The same id is present from another socket (a second tab knocked with the same
            # token): as with a direct rejoin, this presence replaces it and the old socket closes.
            replaced.add(r.participant_id)
            close_replaced(events.participant_group(room.pk, r.participant_id), r.connection_id)
        values = {
            "name": r.name,
            "role": r.role,
            "status": Participant.Status.ACTIVE,
            "breakout": None,
            "can_publish": r.role != Role.VIEWER,
            "resume_hash": r.resume_hash,
            "token_jti": r.token_jti,
            "token_expires_at": r.token_expires_at,
            "server_id": r.server_id,
            "connection_id": r.connection_id,
            "connected_at": now,
            "disconnected_at": r.disconnected_at,
            "left_at": None,
        }
        if old is None:
            p = Participant(room=room, participant_id=r.participant_id, created_at=now, **values)
            to_create.append(p)
        else:
            p = old
            for key, value in values.items():
                setattr(p, key, value)
            to_update.append(p)
        participants.append(p)
    Participant.objects.bulk_create(to_create, batch_size=500)
    if to_update:
        Participant.objects.bulk_update(to_update, fields=list(values), batch_size=500)
    return participants, replaced


def _announce_admitted(
    room: Room,
    admitted: list[EntryRequest],
    participants: list[Participant],
    replaced: set[str],
) -> None:
    """On commit, in one batch: each guest's ``joined`` snapshot (its socket then joins the
    member groups), and ``participant-joined`` (``-updated`` for a replaced id) to members."""
    present = selectors.participants_present(room=room)
    roster = [events.participant_payload(x) for x in present]
    room_data = events.room_payload(room)
    breakouts = selectors.breakouts_for(room=room, moderator=False)
    media.changed(room.pk, participants=[p.participant_id for p in participants])
    media_of = media.joined_media(room.pk, [p.participant_id for p in participants])
    batch: list[tuple[str, Instruction]] = []
    for r, p in zip(admitted, participants, strict=True):
        joined = frames.joined(
            participant=p,
            room=room_data,
            participants=roster,
            resume=None,  # the guest keeps the resume key it already holds
            breakouts=breakouts,
            media=media_of[p.participant_id],
        )
        batch.append(
            (
                events.request_group(r.id),
                Admit(
                    frames=[joined],
                    participant_id=p.participant_id,
                    role=p.role,
                    room_id=str(room.pk),
                ),
            )
        )
    for p in participants:
        kind: frames.ParticipantEvent = (
            "participant-updated" if p.participant_id in replaced else "participant-joined"
        )
        batch.append(
            (events.members_group(room.pk), Deliver(frames=[frames.participant_event(kind, p)]))
        )
    events.send_many_on_commit(batch)


def _deny_frames(r: EntryRequest) -> tuple[str, Instruction]:
    """The denied guest's one outcome: ``ENTRY_DENIED`` (with the reason), close 4403."""
    return events.request_group(r.id), Close.for_error(EntryDenied(r.deny_reason or None))


@transaction.atomic
def entry_request_decide(
    *, room: Room, request_id: Any, actor: Actor, outcome: str, reason: str = ""
) -> Decision:
    """Admit or deny one request. The first decision wins (conditional update on ``pending``
    and an unexpired deadline); a later one is a no-op reporting the current status. A request
    past its deadline that the sweeper has not reached yet is timed out here (``canceled``).

    Emits ``entry-resolved`` to moderators, ``joined`` or ``ENTRY_DENIED`` to the guest, and
    ``participant-joined`` to members. Raises ``InvalidPermissions``, ``RequestNotFound``.
    """
    require_moderator(actor)
    if outcome not in ("admitted", "denied"):
        raise BadRequest("outcome must be admitted or denied.")
    reason = clean_name(reason)
    r = get_request(room, request_id)
    now = clock.now()
    if outcome == "admitted" and r.status == EntryRequest.Status.PENDING:
        # A capped room: the place is counted and taken under the room lock.
        if room.max_participants is not None:
            lock_lobby(room.pk)
        free = free_places(room)
        if free is not None and free < 1 and r.participant_id not in present_ids(room.pk):
            r.refresh_from_db()
            if r.status == EntryRequest.Status.PENDING and r.expires_at > now:
                raise RoomFull()
    if not mark_decided(r, outcome=outcome, by=actor.by, now=now, deny_reason=reason):
        r.refresh_from_db()
        if r.status == EntryRequest.Status.PENDING and r.expires_at <= now:
            # Past its deadline but not swept yet: it timed out, and that is what is reported.
            if mark_canceled(r, reason="timeout", now=now):
                announce_cancel([r], now)
            r.refresh_from_db()
        return Decision(request=r, outcome=r.status, effective=False)
    _announce_decisions(room, [r], outcome, now, actor)
    return Decision(request=r, outcome=outcome, effective=True)


def _announce_decisions(
    room: Room, decided: list[EntryRequest], outcome: str, now: Any, actor: Actor
) -> None:
    events.send_many_on_commit(
        [(events.mods_group(room.pk), Deliver(frames=[frames.entry_resolved(r) for r in decided]))]
    )
    hooks: list[tuple[str, Room | uuid.UUID, dict[str, Any]]] = [
        ("knock.resolved", room, {"request": webhooks.request_data(r)}) for r in decided
    ]
    if outcome == "admitted":
        cache.forget_estimate(room.pk)  # the wait estimate counts admissions
        joined = _admit_rows(room, decided, now)
        hooks += [
            ("participant.joined", room, {"participant": events.participant_payload(p)})
            for p in joined
        ]
    else:
        events.send_many_on_commit([_deny_frames(r) for r in decided])
    webhooks.emit_many(hooks)
    events.queue_changed(room.pk)
    metrics.decided(outcome, decided, now)
    audit_decisions(room=room, actor=actor.by, action=outcome, requests=decided)
    activity.announce(room.pk, [activity.request_item(r) for r in decided])


@transaction.atomic
def entry_requests_decide_all(*, room: Room, actor: Actor, outcome: str) -> int:
    """Admit or deny every pending, unexpired request of a room. Returns how many this call
    decided (requests decided elsewhere meanwhile are not counted)."""
    require_moderator(actor)
    if outcome not in ("admitted", "denied"):
        raise BadRequest("outcome must be admitted or denied.")
    now = clock.now()
    lock_lobby(room.pk)
    pending = list(
        EntryRequest.objects.filter(room=room, status="pending", expires_at__gt=now).order_by(
            "requested_at"
        )
    )
    if not pending:
        return 0
    free = free_places(room) if outcome == "admitted" else None
    if free is not None:
        # A capped room admits the oldest that fit; the others keep waiting. A guest already
        # present under the same id (another tab) takes no new place.
        present = present_ids(room.pk)
        fit = []
        for r in pending:
            if r.participant_id in present:
                fit.append(r)
            elif free > 0:
                fit.append(r)
                free -= 1
        if not fit:
            raise RoomFull()
        pending = fit
    ids = [r.pk for r in pending]
    # One conditional UPDATE; rows decided concurrently are excluded by the status filter.
    changed = EntryRequest.objects.filter(pk__in=ids, status="pending", expires_at__gt=now).update(
        status=outcome, resolved_by=actor.by, resolved_at=now
    )
    if changed != len(ids):
        decided = list(
            EntryRequest.objects.filter(
                pk__in=ids, status=outcome, resolved_by=actor.by, resolved_at=now
            )
        )
    else:
        decided = pending
        for r in decided:
            r.status, r.resolved_by, r.resolved_at = outcome, actor.by, now
    _announce_decisions(room, decided, outcome, now, actor)
    return len(decided)
