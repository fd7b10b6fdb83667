"""The signalling relay and ``media-update``: the services the room socket calls for calls.

``signal`` carries a browser's WebRTC negotiation (offer, answer, ICE candidates) to one other
participant. It is relayed only along the pairs :meth:`policy.Snapshot.may_signal` allows —
both admitted and present, in the same media room (the parent or the same breakout room), at
least one of them publishing, neither paused out of the call — and a participant who does not
publish may answer but never offer. Anything else is refused (``INVALID_PERMISSIONS``) and
reaches nobody; malformed or oversized data is ``BAD_REQUEST``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from django.conf import settings
from django.db import transaction
from pydantic import Field

from .. import events
from ..commands import Command, Message
from ..errors import BadRequest, InvalidPermissions
from ..models import Participant, Room
from . import config, frames, media_payload, policy
from .frames import MediaBody, SignalFrame

MAX_SDP = 32 * 1024
MAX_CANDIDATE = 1024
MAX_CANDIDATES = 32
MAX_ID = 128
GEN_MAX = 2**53 - 1

ParticipantId = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
Gen = Annotated[int, Field(ge=0, le=GEN_MAX)]


class Description(Command):
    type: Literal["offer", "answer"]
    sdp: Annotated[str, Field(min_length=1, max_length=MAX_SDP)]


class Candidate(Command):
    candidate: Annotated[str, Field(max_length=MAX_CANDIDATE)]
    sdpMid: Annotated[str, Field(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=255)] | None = None
    usernameFragment: Annotated[str, Field(max_length=256)] | None = None


class SignalData(Command):
    """One negotiation step. ``gen`` numbers the sender's peer connection for this pair (it
    only grows), ``to`` the receiver's connection it answers (absent on first contact). A
    frame with neither ``description`` nor ``candidates`` is a hello: "this is my connection"."""

    gen: Gen
    to: Gen | None = None
    description: Description | None = None
    candidates: Annotated[list[Candidate], Field(max_length=MAX_CANDIDATES)] | None = None
    screen: Annotated[str, Field(max_length=128)] | None = None  # the screen stream's id


class Signal(Message):
    type: Literal["signal"] = "signal"
    to: ParticipantId
    data: SignalData


class MediaUpdate(Message):
    type: Literal["media-update"] = "media-update"
    audio: bool
    video: bool
    screen: bool = False


MEDIA_MESSAGES: tuple[type[Message], ...] = (Signal, MediaUpdate)


def _snapshot(parent: Room) -> policy.Snapshot:
    return policy.snapshot(parent, max_publishers=config().max_publishers)


def signal_audience(*, parent: Room, sender: str, to: str, offer: bool) -> str:
    """The one function deciding whether a ``signal`` from ``sender`` may reach ``to``: returns
    the group to relay to, or raises ``InvalidPermissions`` (the same answer whether ``to``
    exists elsewhere or not, so the relay reveals nobody)."""
    snap = _snapshot(parent)
    if not snap.may_signal(sender, to):
        raise InvalidPermissions("You cannot send media signals to this participant.")
    state = snap.state(sender)
    if offer and (state is None or not state.publisher):
        raise InvalidPermissions("Only publishers make offers; answer instead.")
    return events.media_group(parent.pk, to)


def signal_frame(*, sender: str, raw: dict[str, Any]) -> SignalFrame:
    """Validate a client ``signal`` and return the frame the receiver gets (``BAD_REQUEST``
    when malformed or too large)."""
    size = len(json.dumps(raw.get("data"), separators=(",", ":")).encode())
    if size > settings.ANTEROOM_SIGNAL_MAX_BYTES:
        raise BadRequest("Signal data too large.")
    msg = Signal.parse(raw)
    return frames.signal(sender, msg.data.model_dump(exclude_none=True))


def signal(*, parent: Room, sender: str, raw: dict[str, Any]) -> tuple[str, SignalFrame]:
    """Check one ``signal`` message; returns (group, frame) to relay now."""
    frame = signal_frame(sender=sender, raw=raw)
    desc = frame["data"].get("description")
    group = signal_audience(
        parent=parent,
        sender=sender,
        to=str(raw["to"]),
        offer=desc is not None and desc["type"] == "offer",
    )
    return group, frame


@transaction.atomic
def media_update(*, parent: Room, participant_id: str, raw: dict[str, Any]) -> dict[str, bool]:
    """A participant says what it sends. Stored; the media room hears ``media-update`` with the
    effective state (capped by permissions). Raises ``InvalidPermissions`` when not present."""
    msg = MediaUpdate.parse(raw)
    changed = (
        Participant.objects.filter(room=parent, participant_id=participant_id)
        .exclude(status=Participant.Status.LEFT)
        .update(media_audio=msg.audio, media_video=msg.video, media_screen=msg.screen)
    )
    if not changed:
        raise InvalidPermissions("Only participants in the room have media.")
    snap = _snapshot(parent)
    effective = snap.media_states([participant_id]).get(
        participant_id, {"audio": False, "video": False, "screen": False}
    )
    room = snap.where.get(participant_id, parent.pk)
    events.deliver_on_commit(
        events.members_group(room),
        frames.media_update(participant_id, effective),
    )
    return effective


def media_state_now(*, parent: Room, participant_id: str) -> MediaBody:
    """The current ``media-state`` body for one participant (a client asking again)."""
    return media_payload(_snapshot(parent), participant_id)
