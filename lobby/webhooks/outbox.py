"""The event catalogue and the outbox: :func:`emit` writes one ``WebhookEvent`` and a
``WebhookDelivery`` per subscribed endpoint, inside the caller's transaction.

Payloads carry what a moderator may see, never a token, resume key, secret, rate-limit key or
client address. Every body has the same envelope::

    {"id": "<event uuid>", "type": "knock.created", "created_at": "…Z", "room": "clinic",
     "data": {…}}
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction

from lobby import cache, clock

if TYPE_CHECKING:
    from lobby.models import EntryRequest, Room, WebhookEndpoint

EVENT_TYPES: tuple[str, ...] = (
    "knock.created",
    "knock.unattended",
    "knock.resolved",
    "participant.joined",
    "participant.left",
    "room.updated",
    "breakout.created",
    "breakout.updated",
    "breakout.cleared",
    "breakout.destroyed",
    "breakout.timer_ended",
)
# What an endpoint may subscribe to: an event name, ``breakout.*`` or ``*`` (everything).
WILDCARDS: dict[str, tuple[str, ...]] = {
    "*": EVENT_TYPES,
    "breakout.*": tuple(e for e in EVENT_TYPES if e.startswith("breakout.")),
}
SUBSCRIBABLE: frozenset[str] = frozenset(EVENT_TYPES) | frozenset(WILDCARDS)
MAX_BODY_BYTES = 256 * 1024


def wants(subscribed: Iterable[str], kind: str) -> bool:
    return any(s == kind or kind in WILDCARDS.get(s, ()) for s in subscribed)


def _ts(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


# Payloads ------------------------------------------------------------------------------------


def request_data(r: EntryRequest) -> dict[str, Any]:
    """A knock as webhooks see it (the moderator's view and its outcome)."""
    return {
        "id": str(r.id),
        "participant_id": r.participant_id,
        "name": r.name,
        "metadata": r.metadata,
        "role": r.role,
        "requested_at": _ts(r.requested_at),
        "expires_at": _ts(r.expires_at),
        "status": r.status,
        "cancel_reason": r.cancel_reason or None,
        "resolved_by": r.resolved_by or None,
        "resolved_at": _ts(r.resolved_at),
    }


# Emitting ------------------------------------------------------------------------------------


def emit(
    kind: str,
    *,
    room: Room | uuid.UUID,
    data: dict[str, Any],
    endpoints: list[WebhookEndpoint] | None = None,
) -> None:
    """Queue one event of ``room`` (a Room or its id; a breakout's events are its parent's)
    for every active endpoint that wants it. Call inside the transaction of the change it
    reports. ``endpoints``: the active endpoints if the caller has read them already
    (``endpoints_subquery``)."""
    emit_many([(kind, room, data)], endpoints=endpoints)


def active_endpoints() -> list[WebhookEndpoint]:
    """The active endpoints (only ``id``, ``events`` and ``room_id`` loaded): one query, or
    none when ``lobby.cache`` holds them."""
    from lobby.models import WebhookEndpoint

    endpoints = cache.get_endpoints()
    if endpoints is None:
        generation = cache.endpoints_generation()
        endpoints = list(
            WebhookEndpoint.objects.filter(active=True).only("id", "events", "room_id")
        )
        cache.put_endpoints(endpoints, generation=generation)
    return endpoints


def endpoints_subquery() -> str:
    """A scalar subquery (no parameters) of the active endpoints as one JSON array of
    ``[id, events, room_id]``, for a caller that folds the read into a statement of its own
    (the knock); ``endpoints_from`` turns its value into endpoints. Take
    ``cache.endpoints_generation()`` before the statement."""
    from django.db import connection

    from lobby.models import WebhookEndpoint

    table = WebhookEndpoint._meta.db_table
    if connection.vendor == "postgresql":
        row = 'json_build_array("id", "events", "room_id")'
        return f'(SELECT json_agg({row}) FROM "{table}" WHERE "active")'  # noqa: S608
    row = 'json_array("id", json("events"), "room_id")'
    return f'(SELECT json_group_array({row}) FROM "{table}" WHERE "active")'  # noqa: S608


def endpoints_from(value: Any, *, generation: int) -> list[WebhookEndpoint]:
    """``endpoints_subquery``'s value as ``active_endpoints`` returns them (and cached as it
    does)."""
    from django.db import connection

    from lobby.models import WebhookEndpoint

    if isinstance(value, str):
        value = json.loads(value)  # SQLite returns the JSON text
    endpoints = [
        WebhookEndpoint.from_db(
            connection.alias,
            ["id", "events", "room_id"],
            [uuid.UUID(pk), events, uuid.UUID(room_id) if room_id else None],
        )
        for pk, events, room_id in value or []
    ]
    cache.put_endpoints(endpoints, generation=generation)
    return endpoints


def emit_many(
    items: Iterable[tuple[str, Room | uuid.UUID, dict[str, Any]]],
    *,
    endpoints: list[WebhookEndpoint] | None = None,
) -> None:
    """Several events in order (one query for the endpoints unless given or cached, bulk
    inserts). Costs at most that query when no endpoint is active."""
    from lobby.models import Room as RoomModel
    from lobby.models import WebhookDelivery, WebhookEvent

    items = list(items)
    if not items:
        return
    if endpoints is None:
        endpoints = active_endpoints()
    if not endpoints:
        return
    # Room ids given alone, and parents of breakouts: one query for their names.
    need = {r for _, r, _ in items if not isinstance(r, RoomModel)}
    need |= {r.parent_id for _, r, _ in items if isinstance(r, RoomModel) and r.parent_id}
    known: dict[Any, tuple[Any, str]] = {}
    if need:
        for pk, up, label in RoomModel.objects.filter(pk__in=need).values_list(
            "pk", "parent_id", "name"
        ):
            known[pk] = (up, label)
    now = clock.now()
    rows: list[WebhookEvent] = []
    targets: list[tuple[WebhookEvent, list[Any], str]] = []
    for kind, room, data in items:
        assert kind in EVENT_TYPES, kind
        room_id: Any
        parent_id: Any
        name: str
        if isinstance(room, RoomModel):
            room_id, parent_id, name = room.pk, room.parent_id, room.name
        else:
            room_id = room
            parent_id, name = known.get(room, (None, ""))
        top = parent_id or room_id
        room_name = known.get(top, (None, name))[1] if parent_id else name
        chosen = [
            e
            for e in endpoints
            if wants(e.events, kind) and (e.room_id is None or e.room_id == top)
        ]
        if not chosen:
            continue
        event_id = uuid.uuid4()
        body = json.dumps(
            {
                "id": str(event_id),
                "type": kind,
                "created_at": _ts(now),
                "room": room_name,
                "data": data,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )
        if len(body.encode()) > MAX_BODY_BYTES:  # cannot happen with the SPEC's limits
            raise ValueError(f"webhook body of {kind} is too large")
        ev = WebhookEvent(id=event_id, type=kind, room_name=room_name, created_at=now, body=body)
        rows.append(ev)
        targets.append((ev, chosen, uuid.UUID(str(top)).hex))
    if not rows:
        return
    WebhookEvent.objects.bulk_create(rows, batch_size=500)
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint_id=e.pk,
                event=ev,
                ordering_key=key,
                created_at=now,
                next_attempt_at=now,
            )
            for ev, chosen, key in targets
            for e in chosen
        ],
        batch_size=500,
    )
    from .doorbell import wake

    transaction.on_commit(wake)
