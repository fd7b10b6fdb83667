"""Participants in the room: join, rename, socket lost, leave."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from .. import activity, clock, events, extensions, frames, media, selectors, webhooks
from ..activity import Item as ActivityItem
from ..errors import AccessDenied, BadRequest, JoinRaced, RoomFull
from ..instructions import Deliver
from ..models import EntryRequest, ModeratorSocket, Participant, Role, Room
from ..runtime import limits
from .access import Connection, JoinPlan
from .inputs import clean_name
from .keys import hash_secret, new_resume_key
from .locks import free_places, lock_lobby
from .outcomes import close_replaced
from .quotas import check_join_limit


@dataclass
class Joined:
    participant: Participant
    room: Room
    participants: list[Participant]
    resume: str
    pending: list[EntryRequest] = field(default_factory=list)
    breakouts: list[dict[str, Any]] = field(default_factory=list)
    media: Mapping[str, Any] = field(default_factory=dict)
    # Moderators only: the latest outcomes (``activity.recent``), newest first.
    activity: list[ActivityItem] | None = None


# What a join (re)writes on the presence row: all of it, whether it is new, resumed or replaced.
JOIN_FIELDS = [
    "name",
    "role",
    "status",
    "breakout",
    "can_publish",
    "token_jti",
    "token_expires_at",
    "resume_hash",
    "server_id",
    "connection_id",
    "connected_at",
    "disconnected_at",
    "left_at",
]


@dataclass(frozen=True)
class _Seat:
    """The presence a join takes, found under the room lock."""

    participant: Participant
    existing: bool  # a row with this id is stored (present or not)
    was_present: bool  # ... and it is in the room now (not ``left``)
    another_tab: bool  # a moderator's further socket on its live presence


@transaction.atomic
def participant_join(*, plan: JoinPlan, conn: Connection) -> Joined:
    """Enter the room directly (level ``full``) or on resume; replaces an earlier presence.

    Locks the room (two first joins with one id, two tabs, must not both insert, and a capped
    room's last place is taken once). Emits ``participant-joined`` (``participant-updated`` when
    the id was present already) to the other members, ``REPLACED`` to a replaced socket.
    Raises ``AccessDenied`` for a plan that must wait in the lobby, ``EntryRateLimited``,
    ``RoomFull``, ``JoinRaced`` for a resumed presence that ended after ``join_plan`` read it.
    """
    if plan.level != "full":
        raise AccessDenied()
    now = clock.now()
    resume = new_resume_key()
    room = plan.room
    lock_lobby(room.pk)
    seat = _take_seat(plan=plan, conn=conn, now=now)
    p = seat.participant
    # A fresh join (no resume key) starts in the parent, out of any breakout it was in (not a
    # moderator's extra tab: the presence it joins stays where it is).
    fresh = plan.resume_participant is None and not seat.another_tab
    left_breakout = p.breakout_id if seat.was_present and fresh else None
    _attach(p, plan=plan, conn=conn, now=now, fresh=fresh, resume=resume)
    if seat.existing:
        p.save(update_fields=JOIN_FIELDS)
    else:
        p.save(force_insert=True)
    if p.role == Role.MODERATOR:
        ModeratorSocket.objects.create(
            participant=p, connection_id=conn.connection_id, server_id=conn.server_id, opened_at=now
        )
    if left_breakout is not None:
        extensions.left_breakout(participant=p, breakout_id=left_breakout)
    media.changed(
        room.pk,
        participants=[p.participant_id],
        revoked=[(p.participant_id, left_breakout)] if left_breakout is not None else [],
    )
    _announce_join(p, room=room, conn=conn, was_present=seat.was_present)
    return _joined(p, room=room, resume=resume)


def _take_seat(*, plan: JoinPlan, conn: Connection, now: Any) -> _Seat:
    """The presence this join takes (caller holds the room lock): the stored row with this id
    (locked) or a new one. Checks the per-address join limit for a made-up id and the room's
    cap for anyone not present already (moderators enter a full room). A moderator present from
    another open socket (a second tab or device) joins that presence and every socket stays
    live; anyone else's new socket replaces the old one, which is closed with ``REPLACED``."""
    room = plan.room
    existing = (
        Participant.objects.select_for_update()
        .filter(room=room, participant_id=plan.participant_id)
        .first()
    )
    was_present = existing is not None and existing.status != Participant.Status.LEFT
    if plan.resume_participant is not None and not was_present:
        # join_plan read the presence without the lock; it has ended since (removed, sent back
        # to the waiting room, left). Resuming it now would undo that: plan again.
        raise JoinRaced()
    if existing is None and plan.fresh_id:
        check_join_limit(room=room, conn=conn, now=now)
    free = free_places(room)
    if not was_present and plan.role != Role.MODERATOR and free is not None and free < 1:
        raise RoomFull()
    if existing is None:
        p = Participant(
            room=room,
            participant_id=plan.participant_id,
            created_at=now,
            client_address=limits.address_key(conn.client_address),
        )
        return _Seat(p, existing=False, was_present=False, another_tab=False)
    another_tab = (
        was_present
        and plan.role == Role.MODERATOR
        and existing.role == Role.MODERATOR
        and existing.disconnected_at is None
        and bool(existing.connection_id)
        and existing.connection_id != conn.connection_id
    )
    if another_tab:
        # The socket already there may predate socket tracking: record it too.
        ModeratorSocket.objects.get_or_create(
            connection_id=existing.connection_id,
            defaults={"participant": existing, "server_id": existing.server_id, "opened_at": now},
        )
    elif was_present and existing.connection_id not in ("", conn.connection_id):
        close_replaced(
            events.participant_group(room.pk, existing.participant_id), conn.connection_id
        )
    return _Seat(existing, existing=True, was_present=was_present, another_tab=another_tab)


def _attach(
    p: Participant, *, plan: JoinPlan, conn: Connection, now: Any, fresh: bool, resume: str
) -> None:
    """Point the presence at this socket (``JOIN_FIELDS``). A fresh join takes the plan's name
    and role and starts in the parent; a resumed one keeps what it had. The credential is the
    plan's unless a resume without a token keeps the one it was admitted with."""
    if fresh:
        p.name = plan.name
        p.role = plan.role
        p.status = Participant.Status.ACTIVE
        p.breakout = None
        p.can_publish = plan.claims.can_publish if plan.claims else True
    elif p.status == Participant.Status.LEFT:
        p.status = Participant.Status.ACTIVE
    if plan.resume_participant is None or plan.claims is not None:
        p.token_jti = plan.token_jti
        p.token_expires_at = plan.token_expires_at
    p.resume_hash = hash_secret(resume)
    p.server_id = conn.server_id
    p.connection_id = conn.connection_id
    p.connected_at = now
    p.disconnected_at = None
    p.left_at = None


def _announce_join(p: Participant, *, room: Room, conn: Connection, was_present: bool) -> None:
    """On commit: the other members hear ``participant-joined`` (``-updated`` for an id that was
    present); a new presence is a ``participant.joined`` webhook."""
    if not was_present:
        webhooks.emit(
            "participant.joined", room=room, data={"participant": events.participant_payload(p)}
        )
    kind: frames.ParticipantEvent = "participant-updated" if was_present else "participant-joined"
    events.send_on_commit(
        events.members_group(room.pk),
        # the joiner learns it from ``joined``
        Deliver(frames=[frames.participant_event(kind, p)], except_connection=conn.connection_id),
    )


def _joined(p: Participant, *, room: Room, resume: str) -> Joined:
    """The joiner's snapshot, read inside the join's transaction."""
    moderator = p.role == Role.MODERATOR
    return Joined(
        participant=p,
        room=room,
        participants=selectors.participants_present(room=room),
        resume=resume,
        pending=selectors.pending_requests(room=room) if moderator else [],
        breakouts=selectors.breakouts_for(
            room=room, moderator=moderator, breakout_id=p.breakout_id
        ),
        media=media.joined_media(room.pk, [p.participant_id])[p.participant_id],
        activity=activity.recent(room=room) if moderator else None,
    )


def joined_frame(j: Joined) -> frames.JoinedFrame:
    """The joiner's ``joined`` (its new resume key; a moderator's latest activity)."""
    return frames.joined(
        participant=j.participant,
        room=j.room,
        participants=[frames.participant_payload(x) for x in j.participants],
        resume=j.resume,
        breakouts=j.breakouts,
        media=j.media,
        activity=list(j.activity) if j.activity is not None else None,
    )


@transaction.atomic
def participant_rename(*, room: Room, participant_id: str, name: Any) -> Participant:
    """A participant changes its name; members hear ``participant-updated``."""
    name = clean_name(name)
    if not name:
        raise BadRequest("name must not be empty.")
    p = Participant.objects.select_for_update().get(room=room, participant_id=participant_id)
    p.name = name
    p.save(update_fields=["name"])
    events.deliver_on_commit(
        events.members_group(room.pk), frames.participant_event("participant-updated", p)
    )
    return p


@transaction.atomic
def participant_disconnected(*, room: Room, participant_id: str, connection_id: str) -> None:
    """A participant's socket closed: they stay listed for the grace period, then leave.

    A moderator present from other sockets too stays connected (locks the presence row, so two
    tabs closing at once cannot both think the other one is still open)."""
    if _other_moderator_socket(room, participant_id, connection_id):
        return
    Participant.objects.filter(
        room=room,
        participant_id=participant_id,
        connection_id=connection_id,
        disconnected_at__isnull=True,
    ).exclude(status="left").update(disconnected_at=clock.now())


@transaction.atomic
def participant_leave(*, room: Room, participant_id: str, connection_id: str | None = None) -> bool:
    """Leave the room now. Emits ``participant-left`` to members. Idempotent."""
    if connection_id is not None and _other_moderator_socket(room, participant_id, connection_id):
        return False  # a moderator's other tabs are still open: only this socket goes
    q = Participant.objects.filter(room=room, participant_id=participant_id).exclude(status="left")
    if connection_id is not None:
        q = q.filter(connection_id=connection_id)
    p = q.first()
    if p is None:
        return False
    return mark_left([p], clock.now(), reason="left", by=participant_id) == 1


def _other_moderator_socket(room: Room, participant_id: str, connection_id: str) -> bool:
    """Forget this socket of a moderator's presence; True if another one is still open (the
    presence then names it). Locks the presence row."""
    p = (
        Participant.objects.select_for_update()
        .filter(room=room, participant_id=participant_id, role=Role.MODERATOR)
        .exclude(status="left")
        .first()
    )
    if p is None:
        return False
    ModeratorSocket.objects.filter(participant=p, connection_id=connection_id).delete()
    rest = ModeratorSocket.objects.filter(participant=p).order_by("-opened_at").first()
    if rest is None:
        if p.connection_id != connection_id:
            # Every tracked socket is gone: this was the last one, whichever the row names.
            Participant.objects.filter(pk=p.pk).update(connection_id=connection_id)
        return False
    if p.connection_id == connection_id:
        Participant.objects.filter(pk=p.pk).update(
            connection_id=rest.connection_id, server_id=rest.server_id
        )
    return True


def mark_left(
    people: list[Participant], now: Any, *, reason: activity.LeaveReason = "left", by: str = ""
) -> int:
    """End these presences (those not ended already): ``participant-left`` to members, an audit
    row and an ``activity`` item (with ``reason``) for moderators. Returns how many ended."""
    done = 0
    ended: list[Participant] = []
    for p in people:
        if (
            Participant.objects.filter(pk=p.pk)
            .exclude(status="left")
            .update(status="left", left_at=now, breakout=None)
        ):
            done += 1
            ended.append(p)
            breakout_id = p.breakout_id
            p.status, p.left_at, p.breakout = "left", now, None
            media.changed(
                p.room_id,
                participants=[p.participant_id],
                revoked=[(p.participant_id, breakout_id or p.room_id)],
            )
            events.deliver_on_commit(
                events.members_group(p.room_id), frames.participant_event("participant-left", p)
            )
            webhooks.emit(
                "participant.left",
                room=p.room_id,
                data={"participant": events.participant_payload(p)},
            )
            if breakout_id:
                extensions.left_breakout(participant=p, breakout_id=breakout_id)
    activity.record_leaves(ended, reason=reason, by=by, at=now)
    moderators = [p.pk for p in ended if p.role == Role.MODERATOR]
    if moderators:
        ModeratorSocket.objects.filter(participant_id__in=moderators).delete()
    return done
