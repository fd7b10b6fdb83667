"""Breakout event payloads and their audiences (SPEC §3). Sending goes through ``lobby.events``.

A service collects what it will say in an :class:`Outbox` and flushes it once; the whole batch
goes out after the transaction commits, in order, as one hop into the event loop.

Audiences:

* ``mods`` of the parent — breakout administration (``breakout-created``, ``breakout-invited``,
  ``breakout-invite-rejected``, ``breakouts-updated``, ``breakout-help-requested``,
  ``breakout-help-resolved``);
* ``members`` of the parent — ``participant-updated`` when someone flips active ↔ paused;
* ``members`` of a breakout — its own members' events (``breakout-participant-*``,
  ``breakout-ending``, ``breakout-extended``, ``breakout-message``);
* ``pt`` of one participant — ``breakout-invitation``, ``breakout-joined``, ``breakout-left``,
  ``breakout-help-resolved`` (its own request);
  a move also tells that participant's socket(s) which breakout group to add or drop
  (``Outbox.move``: the instruction ``Regroup``), so a moved socket follows its owner.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, TypedDict
from uuid import UUID

from lobby import events, frames
from lobby.instructions import Deliver, Frame, Instruction, Regroup
from lobby.models import Participant

from .models import HelpRequest

LeftReason = Literal["left", "cleared", "destroyed", "moved", "timer"]


# Frames ------------------------------------------------------------------------------------
# One typed definition and one constructor per breakout frame (docs/breakouts.md is the
# contract; tests/breakouts/test_frames.py checks each constructor against its examples).

JSON = dict[str, Any]
ParticipantPayload = dict[str, Any]  # lobby.frames.participant_payload


class RoomsFrame(TypedDict):
    type: Literal["breakout-created", "breakouts-updated"]
    rooms: list[JSON]


class InvitationFrame(TypedDict):
    type: Literal["breakout-invitation"]
    room: JSON
    by: str


class InvitedFrame(TypedDict):
    type: Literal["breakout-invited"]
    room_id: str
    clients: list[str]
    by: str


class InviteRejectedFrame(TypedDict):
    type: Literal["breakout-invite-rejected"]
    room_id: str
    participant_id: str


class JoinedFrame(TypedDict):
    type: Literal["breakout-joined"]
    room: JSON


class LeftFrame(TypedDict):
    type: Literal["breakout-left"]
    room_id: str
    reason: LeftReason


class MemberFrame(TypedDict):
    type: Literal["breakout-participant-joined", "breakout-participant-left"]
    participant: ParticipantPayload


class TimerFrame(TypedDict):
    type: Literal["breakout-ending", "breakout-extended"]
    room_id: str
    ends_at: str | None


class MessageFrame(TypedDict):
    type: Literal["breakout-message"]
    text: str
    by: str


class HelpRequestedFrame(TypedDict):
    type: Literal["breakout-help-requested"]
    room_id: str
    participant: ParticipantPayload
    id: str
    requested_at: str | None
    expires_at: str | None


class HelpResolvedFrame(TypedDict):
    type: Literal["breakout-help-resolved"]
    id: str
    room_id: str
    participant_id: str
    outcome: str
    by: str | None


def breakout_created(rooms: list[JSON]) -> RoomsFrame:
    return {"type": "breakout-created", "rooms": rooms}


def breakouts_updated(rooms: list[JSON]) -> RoomsFrame:
    return {"type": "breakouts-updated", "rooms": rooms}


def breakout_invitation(room: JSON, by: str) -> InvitationFrame:
    return {"type": "breakout-invitation", "room": room, "by": by}


def breakout_invited(room_id: UUID, clients: list[str], by: str) -> InvitedFrame:
    return {"type": "breakout-invited", "room_id": str(room_id), "clients": clients, "by": by}


def breakout_invite_rejected(room_id: UUID, participant_id: str) -> InviteRejectedFrame:
    return {
        "type": "breakout-invite-rejected",
        "room_id": str(room_id),
        "participant_id": participant_id,
    }


def breakout_joined(room: JSON) -> JoinedFrame:
    return {"type": "breakout-joined", "room": room}


def breakout_left(room_id: UUID, reason: LeftReason) -> LeftFrame:
    return {"type": "breakout-left", "room_id": str(room_id), "reason": reason}


def breakout_participant(kind: Literal["joined", "left"], p: Participant) -> MemberFrame:
    payload = frames.participant_payload(p)
    if kind == "joined":
        return {"type": "breakout-participant-joined", "participant": payload}
    return {"type": "breakout-participant-left", "participant": payload}


def participant_updated(p: Participant) -> frames.ParticipantFrame:
    """The core's ``participant-updated`` (built by ``lobby.frames``): to the parent's members
    when someone flips active <-> paused."""
    return frames.participant_event("participant-updated", p)


def breakout_ending(room_id: UUID, ends_at: datetime) -> TimerFrame:
    return {"type": "breakout-ending", "room_id": str(room_id), "ends_at": frames.ts(ends_at)}


def breakout_extended(room_id: UUID, ends_at: datetime | None) -> TimerFrame:
    return {"type": "breakout-extended", "room_id": str(room_id), "ends_at": frames.ts(ends_at)}


def breakout_message(text: str, by: str) -> MessageFrame:
    return {"type": "breakout-message", "text": text, "by": by}


def breakout_help_requested(h: HelpRequest, p: Participant) -> HelpRequestedFrame:
    """To moderators (and replayed on a moderator's join while pending): SPEC's ``room_id`` and
    ``participant``, plus the stored request's ``id``, ``requested_at`` and ``expires_at``."""
    return {
        "type": "breakout-help-requested",
        "room_id": str(h.breakout_id),
        "participant": frames.participant_payload(p),
        "id": str(h.id),
        "requested_at": frames.ts(h.requested_at),
        "expires_at": frames.ts(h.expires_at),
    }


def breakout_help_resolved(h: HelpRequest) -> HelpResolvedFrame:
    """To moderators and the asker: the request is no longer pending (``outcome`` answered,
    expired or cleared; ``by`` the answering moderator)."""
    return {
        "type": "breakout-help-resolved",
        "id": str(h.id),
        "room_id": str(h.breakout_id),
        "participant_id": h.participant_id,
        "outcome": h.status,
        "by": h.resolved_by or None,
    }


# Every constructor, by the frame type it builds (tests/breakouts/test_frames.py).
CONSTRUCTORS: dict[str, str] = {
    "breakout-created": "breakout_created",
    "breakouts-updated": "breakouts_updated",
    "breakout-invitation": "breakout_invitation",
    "breakout-invited": "breakout_invited",
    "breakout-invite-rejected": "breakout_invite_rejected",
    "breakout-joined": "breakout_joined",
    "breakout-left": "breakout_left",
    "breakout-participant-joined": "breakout_participant",
    "breakout-participant-left": "breakout_participant",
    "breakout-ending": "breakout_ending",
    "breakout-extended": "breakout_extended",
    "breakout-message": "breakout_message",
    "breakout-help-requested": "breakout_help_requested",
    "breakout-help-resolved": "breakout_help_resolved",
}


# Sending -----------------------------------------------------------------------------------


class Outbox:
    """The (group, instruction) pairs of one service call, sent in order after commit through
    the core's on-commit outbox (``events.send_many_on_commit``)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Instruction]] = []

    def to_mods(self, parent_id: UUID, *frames: Frame) -> None:
        if frames:
            self.items.append((events.mods_group(parent_id), Deliver(frames=list(frames))))

    def to_members(
        self, room_id: UUID, *frames: Frame, except_participant: str | None = None
    ) -> None:
        """Members of a room (parent or breakout). ``except_participant`` is skipped by that
        participant's sockets (it hears of its own move from ``breakout-joined``/``-left``)."""
        if frames:
            self.items.append(
                (
                    events.members_group(room_id),
                    Deliver(frames=list(frames), except_participant=except_participant),
                )
            )

    def to_participant(self, parent_id: UUID, participant_id: str, *frames: Frame) -> None:
        """One participant's socket(s)."""
        self.items.append(
            (events.participant_group(parent_id, participant_id), Deliver(frames=list(frames)))
        )

    def move(
        self,
        parent_id: UUID,
        participant_id: str,
        *frames: Frame,
        to: UUID | None,
        add: Iterable[UUID] = (),
        discard: Iterable[UUID] = (),
    ) -> None:
        """One participant's socket(s) move: relay the frames, leave the member groups of the
        breakout rooms ``discard``, join those of ``add``; the socket is now in breakout ``to``
        (``None``: back in the parent)."""
        self.items.append(
            (
                events.participant_group(parent_id, participant_id),
                Regroup(
                    frames=list(frames),
                    add=[events.members_group(b) for b in add],
                    discard=[events.members_group(b) for b in discard],
                    breakout_id=str(to) if to is not None else None,
                ),
            )
        )

    def flush(self) -> None:
        """Queue everything for after the commit (nothing is sent if the transaction rolls
        back)."""
        items, self.items = self.items, []
        events.send_many_on_commit(items)
