"""The audit trail, written inside the same transaction as the change it records."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from . import clock

if TYPE_CHECKING:
    from .models import EntryRequest, Room


def audit_record(
    *,
    action: str,
    actor: str,
    room: Room | None = None,
    room_id: uuid.UUID | None = None,
    request: EntryRequest | None = None,
    subject: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    from .models import AuditEvent, Room

    if room is None and room_id is not None:
        room = Room.objects.filter(pk=room_id).first()
    AuditEvent.objects.create(
        room=room,
        room_name=room.name if room else "",
        at=clock.now(),
        actor=actor,
        action=action,
        request_id=request.id if request else None,
        subject=request.participant_id if request else subject,
        data=data or {},
    )
