"""Help requests: a breakout member asks for a moderator; a moderator answers, or answers by
joining the asker's room."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from lobby import clock
from lobby.audit import audit_record
from lobby.errors import (
    BadRequest,
    BreakoutFull,
    HelpAlreadyRequested,
    HelpRequestNotFound,
    NotFound,
    NotInBreakout,
)
from lobby.models import Participant, Room
from lobby.services import Actor, require_moderator

from .. import events
from ..events import Outbox
from ..models import HelpRequest
from .help_outcomes import resolve_help
from .invitations import accept_pending
from .locks import lock_parent, places_left, present, present_participant
from .moves import enter
from .notices import rooms_updated

HelpStatus = HelpRequest.Status


@dataclass(frozen=True)
class HelpAnswer:
    request: HelpRequest
    effective: bool


@dataclass(frozen=True)
class HelpJoin:
    request: HelpRequest
    room: Room | None  # the breakout room the moderator is in now (None: nothing changed)
    effective: bool


@transaction.atomic
def breakout_help(*, parent: Room, participant_id: str) -> HelpRequest:
    """A breakout member asks for a moderator. The request is stored (one pending per
    participant, ``ANTEROOM_HELP_REQUEST_TTL`` seconds unless answered) and moderators get
    ``breakout-help-requested`` once; a moderator who connects later gets it replayed, and the
    dashboard lists it. Asking again while it is pending is refused and tells nobody.

    Locks the parent. Raises ``BreakoutLectureMode``, ``NotFound``, ``NotInBreakout``,
    ``HelpAlreadyRequested``."""
    parent = lock_parent(parent)
    p = present_participant(parent, participant_id)
    if p.breakout_id is None:
        raise NotInBreakout()
    now = clock.now()
    out = Outbox()
    pending = HelpRequest.objects.filter(
        parent=parent, participant_id=p.participant_id, status=HelpStatus.PENDING
    ).first()
    if pending is not None:
        if pending.expires_at > now:
            raise HelpAlreadyRequested()
        resolve_help([pending], HelpStatus.EXPIRED, by="", now=now, out=out)
    h = HelpRequest.objects.create(
        parent=parent,
        breakout_id=p.breakout_id,
        participant_id=p.participant_id,
        requested_at=now,
        expires_at=now + timedelta(seconds=settings.ANTEROOM_HELP_REQUEST_TTL),
    )
    out.to_mods(parent.pk, events.breakout_help_requested(h, p))
    out.flush()
    audit_record(room=parent, actor=participant_id, action="breakout-help", data={})
    return h


@transaction.atomic
def breakout_help_answer(*, parent: Room, actor: Actor, participant_id: Any) -> HelpAnswer:
    """A moderator answers a participant's help request (``breakout-help-answer``, the
    dashboard's "Answered" button). Moderators and the asker get ``breakout-help-resolved``
    (outcome ``answered``, ``by``). The first answer wins: answering a request that is no longer
    pending changes nothing (``effective`` False, the request as it ended).

    Locks the parent. Raises ``BreakoutLectureMode``, ``InvalidPermissions``, ``BadRequest``,
    ``HelpRequestNotFound`` (the participant never asked)."""
    parent, last, still_open, now, out = _begin_answer(parent, actor, participant_id)
    if not still_open:
        return HelpAnswer(request=last, effective=False)
    resolve_help([last], HelpStatus.ANSWERED, by=actor.by, now=now, out=out)
    out.flush()
    audit_record(room=parent, actor=actor.by, action="breakout-help-answer", subject=participant_id)
    return HelpAnswer(request=last, effective=True)


def _begin_answer(
    parent: Room, actor: Actor, participant_id: Any
) -> tuple[Room, HelpRequest, bool, datetime, Outbox]:
    """What both answers do first: lock the parent, check the moderator, and find the
    participant's latest help request. One past its deadline but not swept yet ends as
    ``expired`` here (told at once); a request that is no longer ``pending`` is not open to an
    answer. Returns the locked parent, the request, whether it is open, the time and the outbox
    to use. Raises
    ``InvalidPermissions``, ``BadRequest``, ``HelpRequestNotFound`` (the participant never
    asked)."""
    parent = lock_parent(parent)
    require_moderator(actor)
    if not isinstance(participant_id, str) or not participant_id:
        raise BadRequest("participant_id must be a string.")
    last = (
        HelpRequest.objects.filter(parent=parent, participant_id=participant_id)
        .order_by("-requested_at")
        .first()
    )
    if last is None:
        raise HelpRequestNotFound()
    now = clock.now()
    out = Outbox()
    if last.status == HelpStatus.PENDING and last.expires_at > now:
        return parent, last, True, now, out
    if last.status == HelpStatus.PENDING:  # past its deadline, not swept yet
        resolve_help([last], HelpStatus.EXPIRED, by="", now=now, out=out)
        out.flush()
    return parent, last, False, now, out


def _moderator_presence(parent: Room, actor: Actor) -> Participant:
    """The acting moderator's own presence in the parent (locked): joining a breakout room is a
    move of a live connection. Raises ``NotFound`` (a dashboard without its live connection)."""
    if actor.participant_id is None:
        raise NotFound("Only a moderator connected to the room can join a breakout room.")
    me = present(parent).filter(participant_id=actor.participant_id).first()
    if me is None:
        raise NotFound("You are not connected to the room; open the dashboard to join the call.")
    return me


@transaction.atomic
def breakout_help_join(*, parent: Room, actor: Actor, participant_id: Any) -> HelpJoin:
    """A moderator answers a help request by joining the asker's breakout room (the
    dashboard's "Join room N"): the moderator's own presence moves into that room (out of
    another breakout if need be, like ``breakout-join``; moderators need no invitation, and
    count towards capacity) and the request is ``answered`` by them, in one transaction. A
    request that already ended changes nothing and moves nobody (``effective`` False).

    Locks the parent and both participants' rows. Emits what ``breakout-join`` emits (the
    moderator's ``breakout-joined``, ``breakout-participant-joined`` to the room's members,
    ``participant-updated``, ``breakouts-updated``) and ``breakout-help-resolved`` to moderators
    and the asker. Raises ``BreakoutLectureMode``, ``InvalidPermissions``, ``BadRequest``,
    ``HelpRequestNotFound`` (the participant never asked), ``NotFound`` (the moderator has no
    presence in the room: a dashboard without its live connection cannot join a call),
    ``BreakoutFull``."""
    parent, last, still_open, now, out = _begin_answer(parent, actor, participant_id)
    if not still_open:
        return HelpJoin(request=last, room=None, effective=False)
    me = _moderator_presence(parent, actor)
    room = Room.objects.get(pk=last.breakout_id)
    if me.breakout_id != room.pk:
        if places_left(room) < 1:
            raise BreakoutFull()
        accept_pending(room, me.participant_id)
        enter(parent=parent, room=room, people=[me], out=out)
    resolve_help([last], HelpStatus.ANSWERED, by=actor.by, now=now, out=out)
    rooms_updated(parent, out)
    out.flush()
    audit_record(
        room=parent,
        actor=actor.by,
        action="breakout-help-join",
        subject=participant_id,
        data={"room": room.number},
    )
    return HelpJoin(request=last, room=room, effective=True)
