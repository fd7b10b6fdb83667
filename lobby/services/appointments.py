"""Appointment windows: a room's optional ``opens_at`` / ``closes_at`` (docs/protocol.md).

A clinic books a consultation from 10:00 to 10:30; the patient arrives at 09:50. Without a
window the knock would expire after the room's ``knock_ttl`` (60 s by default, 600 s at most).
With one:

* a knock from ``ANTEROOM_APPOINTMENT_EARLY`` seconds (default 1800: 30 minutes) before
  ``opens_at`` is accepted and waits; the guest is told when the room opens (``room-opens``)
  and nothing else about the room;
* its deadline is stored on the knock (``expires_at``), so a restart changes nothing and the
  sweeper enforces it as any other: the window's close, and never less than the knock's usual
  ttl counted from the opening (``max(opens_at, now) + ttl``); at most ``MAX_WAIT`` after that;
* a knock earlier than that is refused ``ROOM_NOT_OPEN`` (with ``opens_at``, ``knock_from`` and
  ``retry_after``) and a knock at or after ``closes_at`` is refused ``ROOM_CLOSED``; nothing is
  stored, so a refused knock costs the guest no place and no rate-limit allowance;
* moderators may admit early: the window holds the waiting room, not the host;
* the window concerns knocks only: moderators and guests with direct access enter as before.

Changing a window never shortens a waiting guest's deadline (deny them to send them away); a
later close or opening extends it, and waiting guests hear the new opening time.

The rules run inside the services' transactions (``rooms.room_create`` / ``room_update`` and
``knocks.entry_request_knock`` call the hooks here); events go out after commit through
``events``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from .. import events, frames
from ..errors import BadRequest, RoomClosed, RoomNotOpen
from ..instructions import Deliver
from ..models import EntryRequest, Room

FIELDS = ("opens_at", "closes_at")
MAX_WINDOW = timedelta(hours=24)  # closes_at - opens_at
MAX_WAIT = timedelta(hours=24)  # a knock's deadline after max(now, opens_at)
# Far enough from datetime's limits that deadlines computed from a window never overflow.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def early() -> timedelta:
    """How long before ``opens_at`` a guest may knock and wait (``ANTEROOM_APPOINTMENT_EARLY``)."""
    return timedelta(seconds=max(0, settings.ANTEROOM_APPOINTMENT_EARLY))


# Validation (room create / update) --------------------------------------------------------


def check_fields(fields: dict[str, Any]) -> None:
    """Types of the window fields a service caller passes: aware datetimes or None."""
    for key in FIELDS:
        if key not in fields or fields[key] is None:
            continue
        value = fields[key]
        if not isinstance(value, datetime):
            raise BadRequest(f"{key} must be a date and time (ISO 8601) or null.")
        if value.tzinfo is None or value.utcoffset() is None:
            raise BadRequest(f"{key} must include a time zone (e.g. 2026-12-01T10:00:00Z).")
        if not EARLIEST <= value < LATEST:
            raise BadRequest(f"{key} must be between the years 2000 and 2999.")


def check_window(room: Room | None, fields: dict[str, Any]) -> tuple[Any, Any]:
    """Refuse a window that would close before it opens, or last longer than 24 hours, once
    ``fields`` are applied to ``room`` (its stored values; None: a new room). Returns the
    window as it was, for ``window_changed``. Raises ``BadRequest``."""
    before = (room.opens_at, room.closes_at) if room is not None else (None, None)
    if not any(k in fields for k in FIELDS):
        return before
    opens_at = fields.get("opens_at", before[0])
    closes_at = fields.get("closes_at", before[1])
    if opens_at is not None and closes_at is not None:
        if closes_at <= opens_at:
            raise BadRequest("closes_at must be after opens_at.")
        if closes_at - opens_at > MAX_WINDOW:
            raise BadRequest("The appointment window may be at most 24 hours long.")
    return before


# Knocks -----------------------------------------------------------------------------------


def _wait_until(opens_at: Any, closes_at: Any, *, now: datetime, ttl: int) -> datetime:
    start = max(now, opens_at) if opens_at is not None else now
    deadline = start + timedelta(seconds=ttl)
    if closes_at is not None:
        deadline = max(deadline, min(closes_at, start + MAX_WAIT))
    return deadline


def _window(room: Room) -> tuple[Any, Any]:
    """The room's window read again in the caller's transaction (after the room lock), so a
    knock sees a window changed since its room was looked up. A room read without one costs
    nothing more (as ``locks.free_places`` does for the cap)."""
    if room.opens_at is None and room.closes_at is None:
        return None, None
    row = Room.objects.filter(pk=room.pk).values_list("opens_at", "closes_at").first()
    return row if row is not None else (None, None)


def knock_deadline(*, room: Room, now: datetime, ttl: int) -> datetime:
    """The ``expires_at`` of a fresh knock at ``now`` with the usual ``ttl``: ``now + ttl``
    without a window. Raises ``RoomClosed`` at or after ``closes_at`` and ``RoomNotOpen`` more
    than ``ANTEROOM_APPOINTMENT_EARLY`` seconds before ``opens_at``; the caller stores nothing
    then. Call it holding the room lock (``locks.lock_lobby``)."""
    opens_at, closes_at = _window(room)
    if closes_at is not None and now >= closes_at:
        raise RoomClosed(
            "The room's appointment time is over; it closed at the time given.",
            closed_at=events._ts(closes_at),
        )
    if opens_at is not None and now < opens_at - early():
        knock_from = opens_at - early()
        raise RoomNotOpen(
            "The room is not open yet. Come back closer to its opening time.",
            opens_at=events._ts(opens_at),
            knock_from=events._ts(knock_from),
            retry_after=max(1, math.ceil((knock_from - now).total_seconds())),
        )
    return _wait_until(opens_at, closes_at, now=now, ttl=ttl)


def guest_frames(room: Room, *, now: datetime) -> list[frames.RoomOpensFrame]:
    """What a waiting guest is told about the window: when the room opens, while it has not
    (``room-opens``); nothing once it is open, and nothing else about the room."""
    if room.opens_at is not None and room.opens_at > now:
        return [frames.room_opens(room.opens_at)]
    return []


def guest_form_window(room: Room, *, now: datetime) -> dict[str, Any]:
    """What the knock page says before anyone knocks: the opening time and from when a knock
    waits, while the room has not opened (``{}`` otherwise; never the window's end)."""
    if room.opens_at is None or room.opens_at <= now:
        return {}
    return {
        "opens_at": events._ts(room.opens_at),
        "knock_from": events._ts(room.opens_at - early()),
    }


def is_early(r: EntryRequest, room: Room, *, now: datetime) -> bool:
    """A knock waiting for the room to open (the dashboard tags it)."""
    return room.opens_at is not None and r.requested_at < room.opens_at and now < room.opens_at


def dashboard_window(room: Room, *, now: datetime) -> dict[str, Any] | None:
    """The window as the dashboard shows it (None: the room has none)."""
    if room.opens_at is None and room.closes_at is None:
        return None
    return {
        "opens_at": room.opens_at,
        "closes_at": room.closes_at,
        # Only while early arrivals are still to come.
        "knock_from": room.opens_at - early()
        if room.opens_at is not None and now < room.opens_at
        else None,
        "closed": room.closes_at is not None and now >= room.closes_at,
    }


# A window changed (room_update) ------------------------------------------------------------


def window_changed(room: Room, before: tuple[Any, Any], *, now: datetime) -> int:
    """After ``room`` (locked, saved) got a new window: waiting guests hear the opening time
    (``room-opens``, ``opens_at`` null once open or without one), and a later close or opening
    extends their deadlines (``deadline-extended`` to each, ``entry-updated`` to moderators);
    none is shortened. Returns how many deadlines moved."""
    after = (room.opens_at, room.closes_at)
    if after == before:
        return 0
    opens = room.opens_at if room.opens_at is not None and room.opens_at > now else None
    events.deliver_on_commit(events.lobby_group(room.pk), frames.room_opens(opens))
    if after == (None, None) or (room.closes_at is not None and room.closes_at <= now):
        return 0  # no window (knocks keep theirs) or a closed one: nobody gets more time
    until = _wait_until(room.opens_at, room.closes_at, now=now, ttl=room.knock_ttl)
    later = list(
        EntryRequest.objects.select_for_update().filter(
            room=room,
            status=EntryRequest.Status.PENDING,
            expires_at__gt=now,
            expires_at__lt=until,
        )
    )
    for r in later:
        r.expires_at = until
    EntryRequest.objects.bulk_update(later, ["expires_at"], batch_size=500)
    extended = frames.deadline_extended(until)
    events.send_many_on_commit(
        [(events.request_group(r.id), Deliver(frames=[extended])) for r in later]
    )
    for r in later:
        events.entry_updated(r)
    return len(later)
