"""How a knock leaves ``pending`` and who is told: shared by knocks, decisions, sweep, tokens."""

from __future__ import annotations

import uuid
from typing import Any

from .. import activity, events, frames, webhooks
from ..audit import audit_record
from ..errors import AnteroomError, EntryTimeout, Replaced, RequestNotFound
from ..instructions import Cancel, Close, Deliver, Instruction
from ..models import EntryRequest, Room
from ..ops import metrics


def close_replaced(group: str, keep_connection: str) -> None:
    """After commit, close every socket of ``group`` but ``keep_connection`` with ``REPLACED``
    (4409): a guest or participant that attached again from a newer socket."""
    events.send_on_commit(group, Close.for_error(Replaced(), except_connection=keep_connection))


def mark_decided(
    r: EntryRequest, *, outcome: str, by: str, now: Any, deny_reason: str = ""
) -> bool:
    """Admit or deny one knock if it is still pending and inside its deadline: a conditional
    UPDATE, so the first decision wins. True if this call decided it (``r`` then shows it)."""
    changed = EntryRequest.objects.filter(
        pk=r.pk, status=EntryRequest.Status.PENDING, expires_at__gt=now
    ).update(
        status=outcome, cancel_reason="", resolved_by=by, resolved_at=now, deny_reason=deny_reason
    )
    if changed:
        r.status, r.cancel_reason, r.resolved_by, r.resolved_at = outcome, "", by, now
        r.deny_reason = deny_reason
    return changed == 1


def mark_canceled(r: EntryRequest, *, reason: str, now: Any) -> bool:
    """Cancel one knock if it is still pending, whatever its deadline (a timeout is a cancel
    too): a conditional UPDATE. True if this call canceled it (``r`` then shows it)."""
    changed = EntryRequest.objects.filter(pk=r.pk, status=EntryRequest.Status.PENDING).update(
        status=EntryRequest.Status.CANCELED,
        cancel_reason=reason,
        resolved_by="",
        resolved_at=now,
        deny_reason="",
    )
    if changed:
        r.status, r.cancel_reason, r.resolved_by, r.resolved_at = "canceled", reason, "", now
        r.deny_reason = ""
    return changed == 1


def get_request(room: Room, request_id: Any) -> EntryRequest:
    try:
        rid = uuid.UUID(str(request_id))
    except ValueError as exc:
        raise RequestNotFound() from exc
    r = EntryRequest.objects.filter(pk=rid, room=room).first()
    if r is None:
        raise RequestNotFound()
    return r


def announce_cancel(
    canceled: list[EntryRequest], now: Any, *, guest_error: AnteroomError | None = None
) -> None:
    """Tell moderators and each guest that these knocks were canceled: the guest hears exactly
    one outcome — ``canceled`` (aborted), ``guest_error`` when given (e.g. ``TOKEN_REVOKED``),
    else ``ENTRY_TIMEOUT`` — and its socket closes unless it aborted."""
    batch: list[tuple[str, Instruction]] = []
    rooms = set()
    for r in canceled:
        rooms.add(r.room_id)
        batch.append((events.mods_group(r.room_id), Deliver(frames=[frames.entry_canceled(r)])))
        told: Instruction = (
            Cancel(frames=[frames.canceled()])
            if r.cancel_reason == "aborted"
            else Close.for_error(guest_error or EntryTimeout())
        )
        batch.append((events.request_group(r.id), told))
        audit_record(
            room_id=r.room_id,
            actor=r.participant_id if r.cancel_reason == "aborted" else "system",
            action="cancel",
            request=r,
            data={"reason": r.cancel_reason},
        )
    events.send_many_on_commit(batch)
    webhooks.emit_many(
        ("knock.resolved", r.room_id, {"request": webhooks.request_data(r)}) for r in canceled
    )
    metrics.canceled(canceled)
    for room_id in rooms:
        events.queue_changed(room_id)
        activity.announce(
            room_id, [activity.request_item(r) for r in canceled if r.room_id == room_id]
        )
