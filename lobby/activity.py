"""The moderators' activity list: every outcome of a room (admitted, denied, timed out, canceled,
dropped, left, removed, sent back to the waiting room), who, when and by whom.

It is read from the audit trail (``AuditEvent``), which every outcome already writes in the
transaction that makes it, so the list survives reloads and restarts and covers what nobody on
the dashboard decided. Live, the same items go to the room's moderators as one ``activity`` frame
per transaction (``{"type": "activity", "items": [...]}``), after commit, through their own
group (``events.activity_group``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from . import events, frames

if TYPE_CHECKING:
    from .models import EntryRequest, Participant, Room

Kind = Literal[
    "admitted",
    "denied",
    "timed-out",
    "canceled",
    "dropped",
    "left",
    "removed",
    "sent-to-lobby",
]
# Why a presence ended (``participant-left``'s ``reason``), and the activity kind it shows as.
LeaveReason = Literal["left", "disconnected", "revoked", "removed", "lobby"]
LEAVE_KINDS: dict[str, Kind] = {
    "left": "left",
    "disconnected": "left",
    "revoked": "left",
    "removed": "removed",
    "lobby": "sent-to-lobby",
}
CANCEL_KINDS: dict[str, Kind] = {
    "timeout": "timed-out",
    "aborted": "canceled",
    "disconnected": "dropped",
}
AUDIT_ACTIONS = ("admitted", "denied", "cancel", "leave")
DEFAULT_LIMIT = 12


class Item(TypedDict):
    kind: Kind
    participant_id: str
    name: str
    at: str | None
    by: str  # a moderator's participant id, ``staff:<user>``, ``api:<key>``, or "" (nobody)
    reason: str  # deny reason, or why a presence ended ("left", "disconnected", …)


def _ts(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def request_item(r: EntryRequest) -> Item:
    """The item of a knock that is no longer pending."""
    if r.status == "canceled":
        kind = CANCEL_KINDS.get(r.cancel_reason, "canceled")
        by = r.participant_id if r.cancel_reason == "aborted" else ""
        reason = r.cancel_reason
    else:
        kind = "admitted" if r.status == "admitted" else "denied"
        by, reason = r.resolved_by, r.deny_reason
    return Item(
        kind=kind,
        participant_id=r.participant_id,
        name=r.name,
        at=_ts(r.resolved_at),
        by=by,
        reason=reason,
    )


def leave_item(p: Participant, *, reason: str, by: str, at: datetime) -> Item:
    return Item(
        kind=LEAVE_KINDS.get(reason, "left"),
        participant_id=p.participant_id,
        name=p.name,
        at=_ts(at),
        by=by,
        reason=reason,
    )


def announce(room_id: uuid.UUID | str, items: Iterable[Item]) -> None:
    """Queue one ``activity`` frame for the room's moderators (after commit)."""
    listed = list(items)
    if listed:
        events.deliver_on_commit(events.activity_group(room_id), frames.activity(listed))


def record_leaves(people: list[Participant], *, reason: str, by: str, at: datetime) -> None:
    """Audit the presences that ended (one bulk insert) and announce them, room by room."""
    from .models import AuditEvent, Room

    if not people:
        return
    names = dict(Room.objects.filter(pk__in={p.room_id for p in people}).values_list("pk", "name"))
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                room_id=p.room_id,
                room_name=names.get(p.room_id, ""),
                at=at,
                actor=by or p.participant_id,
                action="leave",
                subject=p.participant_id,
                data={"reason": reason, "name": p.name, "by": by},
            )
            for p in people
        ],
        batch_size=500,
    )
    by_room: dict[uuid.UUID, list[Item]] = {}
    for p in people:
        by_room.setdefault(p.room_id, []).append(leave_item(p, reason=reason, by=by, at=at))
    for room_id, items in by_room.items():
        announce(room_id, items)


def recent(*, room: Room, limit: int = DEFAULT_LIMIT) -> list[Item]:
    """The room's latest outcomes, newest first (the dashboard's activity list)."""
    from .models import AuditEvent, EntryRequest

    rows = list(
        AuditEvent.objects.filter(room=room, action__in=AUDIT_ACTIONS).order_by("-at", "-pk")[
            :limit
        ]
    )
    requests = {
        r.pk: r
        for r in EntryRequest.objects.filter(
            pk__in=[e.request_id for e in rows if e.request_id is not None]
        )
    }
    items: list[Item] = []
    for e in rows:
        data: dict[str, Any] = e.data if isinstance(e.data, dict) else {}
        if e.action == "leave":
            reason = str(data.get("reason", "left"))
            items.append(
                Item(
                    kind=LEAVE_KINDS.get(reason, "left"),
                    participant_id=e.subject,
                    name=str(data.get("name", "")),
                    at=_ts(e.at),
                    by=str(data.get("by", "")),
                    reason=reason,
                )
            )
            continue
        r = requests.get(e.request_id) if e.request_id else None
        name = r.name if r is not None else ""
        if e.action == "cancel":
            cause = str(data.get("reason", ""))
            kind: Kind = CANCEL_KINDS.get(cause, "canceled")
            by = e.subject if cause == "aborted" else ""
        else:
            kind = "admitted" if e.action == "admitted" else "denied"
            by, cause = e.actor, str(data.get("reason", ""))
        items.append(
            Item(kind=kind, participant_id=e.subject, name=name, at=_ts(e.at), by=by, reason=cause)
        )
    return items
