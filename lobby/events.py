"""Every event payload and every group name, and the only caller of ``group_send``.

Events are queued with ``transaction.on_commit`` by services, so nobody hears of a change that
rolls back. Payloads are complete: consumer handlers never query the database.

Audiences are separate groups (group names are built from primary keys or hashes, never from
client text):

* ``members`` of a room — admitted participants of the parent (including those paused in a
  breakout); never a waiting guest;
* ``mods`` of a room — moderators only (entry requests, breakout administration);
* ``lobby`` of a room — waiting guests, who only ever receive their own queue position;
* ``req`` — one waiting guest's socket (keyed by the request id);
* ``pt`` — one participant's socket(s) in a room.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

if TYPE_CHECKING:
    from .models import EntryRequest, Participant, Room

log = logging.getLogger("anteroom.events")

# The consumer method that relays frames: ``{"type": EVENT, "frames": [...], "action": ...}``.
EVENT = "anteroom.event"


def _hex(value: UUID | str) -> str:
    return value.hex if isinstance(value, UUID) else UUID(str(value)).hex


def members_group(room_id: UUID | str) -> str:
    return f"members.{_hex(room_id)}"


def mods_group(room_id: UUID | str) -> str:
    return f"mods.{_hex(room_id)}"


def lobby_group(room_id: UUID | str) -> str:
    return f"lobby.{_hex(room_id)}"


def request_group(request_id: UUID | str) -> str:
    return f"req.{_hex(request_id)}"


def participant_group(room_id: UUID | str, participant_id: str) -> str:
    digest = hashlib.sha256(participant_id.encode()).hexdigest()[:40]
    return f"pt.{_hex(room_id)}.{digest}"


# Payloads ----------------------------------------------------------------------------------


def _ts(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def room_payload(room: Room) -> dict[str, Any]:
    return {
        "name": room.name,
        "privacy": room.privacy,
        "mode": room.mode,
        "enable_knocking": room.enable_knocking,
        "max_active_talkers": room.max_active_talkers,
        "knock_ttl": room.knock_ttl,
        "paused": room.paused,
        "audio_muted": room.audio_muted,
        "video_muted": room.video_muted,
        "created_at": _ts(room.created_at),
    }


def participant_payload(p: Participant) -> dict[str, Any]:
    return {
        "participant_id": p.participant_id,
        "name": p.name,
        "role": p.role,
        "status": p.status,
        "breakout_id": str(p.breakout_id) if p.breakout_id else None,
    }


def request_payload(r: EntryRequest) -> dict[str, Any]:
    """The moderator's view of an entry request."""
    return {
        "id": str(r.id),
        "participant_id": r.participant_id,
        "name": r.name,
        "metadata": r.metadata,
        "requested_at": _ts(r.requested_at),
        "expires_at": _ts(r.expires_at),
        "status": r.status,
        "connected": r.disconnected_at is None,
    }


def request_full_payload(r: EntryRequest) -> dict[str, Any]:
    """The REST view: adds the outcome fields."""
    return request_payload(r) | {
        "room": r.room.name,
        "cancel_reason": r.cancel_reason or None,
        "resolved_by": r.resolved_by or None,
        "resolved_at": _ts(r.resolved_at),
    }


def guest_request_payload(r: EntryRequest) -> dict[str, Any]:
    """The guest's own view of its knock: nothing about the room."""
    return {"id": str(r.id), "requested_at": _ts(r.requested_at), "expires_at": _ts(r.expires_at)}


def error_frame(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message}}


# Sending -----------------------------------------------------------------------------------


def _send_now(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover - settings always define one
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        # The database already holds the truth; clients resynchronise from a snapshot.
        log.exception("group_send to %s failed", group.split(".")[0])


def send_on_commit(group: str, *frames: dict[str, Any], action: str = "", **extra: Any) -> None:
    """Queue frames for a group, sent after the current transaction commits."""
    message = {"type": EVENT, "frames": list(frames), "action": action, **extra}
    transaction.on_commit(lambda: _send_now(group, message))


async def _send_batch(batch: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:  # pragma: no cover
        return
    for group, message in batch:
        try:
            await layer.group_send(group, message)
        except Exception:
            log.exception("group_send to %s failed", group.split(".")[0])


def send_many_on_commit(items: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Queue several (group, message) pairs as one on-commit callback, sent in order.

    One hop into the event loop for the whole batch: admit-all of 1,000 guests is one call.
    """
    batch = [(g, {"type": EVENT, **m}) for g, m in items]
    if batch:
        transaction.on_commit(lambda: async_to_sync(_send_batch)(batch))


# Lobby events --------------------------------------------------------------------------------


def entry_requested(r: EntryRequest) -> None:
    send_on_commit(
        mods_group(r.room_id), {"type": "entry-requested", "request": request_payload(r)}
    )


def entry_updated(r: EntryRequest) -> None:
    send_on_commit(mods_group(r.room_id), {"type": "entry-updated", "request": request_payload(r)})


def entry_resolved_for_mods(r: EntryRequest) -> dict[str, Any]:
    return {
        "type": "entry-resolved",
        "request_id": str(r.id),
        "outcome": r.status,
        "by": r.resolved_by,
    }


def entry_canceled_for_mods(r: EntryRequest) -> dict[str, Any]:
    return {"type": "entry-canceled", "request_id": str(r.id), "reason": r.cancel_reason}


def queue_changed(room_id: UUID | str, order: list[str]) -> None:
    """Tell waiting guests the queue changed; each consumer finds its own position."""
    send_on_commit(lobby_group(room_id), action="queue", order=order)
