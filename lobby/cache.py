"""Rooms and token revocations read once, not on every socket action — where that is exact.

Every knock, connect (``preauth``) and join looks its room up by name, and every token check
and moderator action asks whether a ``jti`` is revoked: two queries per action that almost
never change their answer. This module keeps both answers in memory **only when the process is
the whole deployment**: the embedded default, whose in-memory channel layer cannot span
processes. There every change goes through this process, and is forgotten here the moment it
is made:

* rooms: Django's ``post_save`` / ``post_delete`` of ``Room`` (services, REST, admin, cascades)
  and ``forget_room`` where a service writes with ``QuerySet.update``;
* revocations: ``post_save`` / ``post_delete`` of ``MeetingToken`` and ``forget_token`` in
  ``tokens.revoke_token`` (which writes with ``update``) — before and after its commit, so no
  check on this process can see a revoked token as valid once ``revoke_token`` has run.

Entries also lapse after ``TTL`` seconds, for edits made outside the process (SQL, another
``manage.py`` process on the same SQLite file). With a shared channel layer (Redis: several
processes) nothing is cached — a change made by another process could not be forgotten here at
once, and revocation is promised "at once" (docs/security.md).

Cached rooms are copies: a caller may change its instance without touching the cache.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

if TYPE_CHECKING:
    from .models import Room

TTL = 2.0
_MAX = 10000
_lock = threading.Lock()
_rooms: dict[str, tuple[float, Room]] = {}
_revoked: dict[str, tuple[float, bool]] = {}
_enabled: bool | None = None


def enabled() -> bool:
    """True when this process is the whole deployment (the in-memory channel layer)."""
    global _enabled
    if _enabled is None:
        backend = str(settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", ""))
        _enabled = backend.endswith("InMemoryChannelLayer")
    return _enabled


def _settings_changed(**kwargs: Any) -> None:
    global _enabled
    if kwargs.get("setting") == "CHANNEL_LAYERS":
        _enabled = None
        clear()


def clear() -> None:
    global _endpoints, _endpoints_gen
    with _lock:
        _rooms.clear()
        _revoked.clear()
        _estimates.clear()
        _endpoints = None
        _endpoints_gen += 1


def _copy_room(room: Room) -> Room:
    """What ``copy.copy`` makes of a model instance (its fields, a copy of its ``_state`` with
    copies of the state's caches, as ``Model.__getstate__`` / ``ModelState.__getstate__`` do),
    in a tenth of the time: a warm connect copies its room once."""
    new = type(room).__new__(type(room))
    state = room._state.__dict__.copy()
    for key in ("fields_cache", "related_managers_cache"):
        if key in state:
            state[key] = state[key].copy()
    fields = room.__dict__.copy()
    fields["_state"] = new_state = type(room._state).__new__(type(room._state))
    new_state.__dict__.update(state)
    new.__dict__.update(fields)
    return new


def _in_transaction() -> bool:
    # What a transaction reads may be its own uncommitted change, rolled back later: only what
    # autocommit read (committed) is kept.
    return transaction.get_connection().in_atomic_block


# Rooms ---------------------------------------------------------------------------------------


def get_room(name: str) -> Room | None:
    """A copy of the cached top-level room ``name``, or None (not cached, caching is off, or a
    transaction is open: it reads the database, its own changes included)."""
    if not enabled() or _in_transaction():
        return None
    with _lock:
        hit = _rooms.get(name)
    if hit is None or hit[0] < time.monotonic():
        return None
    return _copy_room(hit[1])


def put_room(room: Room) -> None:
    if not enabled() or room.parent_id is not None or _in_transaction():
        return
    with _lock:
        if len(_rooms) >= _MAX:
            _rooms.clear()
        _rooms[room.name] = (time.monotonic() + TTL, _copy_room(room))


def forget_room(room_id: Any = None, name: str | None = None) -> None:
    """Forget a room (by pk, name, or both), now and again when the transaction commits (a
    read between the two, inside the transaction, must not survive it)."""

    def drop() -> None:
        with _lock:
            for key, (_, r) in list(_rooms.items()):
                if key == name or (room_id is not None and str(r.pk) == str(room_id)):
                    del _rooms[key]

    drop()
    transaction.on_commit(drop)


# Revocations ---------------------------------------------------------------------------------


def is_revoked(jti: str) -> bool | None:
    """The cached answer for ``jti`` (True: revoked), or None (as for ``get_room``)."""
    if not enabled() or _in_transaction():
        return None
    with _lock:
        hit = _revoked.get(jti)
    if hit is None or hit[0] < time.monotonic():
        return None
    return hit[1]


def put_revoked(jti: str, revoked: bool) -> None:
    if not enabled() or _in_transaction():
        return
    with _lock:
        if len(_revoked) >= _MAX:
            _revoked.clear()
        _revoked[jti] = (time.monotonic() + TTL, revoked)


def forget_token(jti: str) -> None:
    def drop() -> None:
        with _lock:
            _revoked.pop(jti, None)

    drop()
    transaction.on_commit(drop)


# Wait estimates -------------------------------------------------------------------------------
#
# ``analytics.recent_time_to_admit`` of a room: read after every knock, changed only by an
# admission in the room (``forget_estimate``, from the decision services) or by the clock (the
# oldest admission it counts leaving its window: ``until`` below). None ("too few") stays true
# until the next admission: the window only ever drops rows.

_estimates: dict[str, tuple[float, Any, float | None]] = {}


def get_estimate(room_id: Any) -> tuple[bool, float | None]:
    """(True, the cached estimate) or (False, None) if not cached, as for ``get_room``. The
    caller passes its clock's now through ``until`` at ``put_estimate``."""
    if not enabled() or _in_transaction():
        return False, None
    from . import clock

    with _lock:
        hit = _estimates.get(str(room_id))
    if hit is None or hit[0] < time.monotonic() or (hit[1] is not None and clock.now() > hit[1]):
        return False, None
    return True, hit[2]


def put_estimate(room_id: Any, value: float | None, *, until: Any = None) -> None:
    """Keep ``value`` for ``TTL`` seconds, and not past ``until`` (a project-clock datetime)."""
    if not enabled() or _in_transaction():
        return
    with _lock:
        if len(_estimates) >= _MAX:
            _estimates.clear()
        _estimates[str(room_id)] = (time.monotonic() + TTL, until, value)


def forget_estimate(room_id: Any) -> None:
    """An admission in the room: forget now and again at commit (as ``forget_room``)."""

    def drop() -> None:
        with _lock:
            _estimates.pop(str(room_id), None)

    drop()
    transaction.on_commit(drop)


# Webhook endpoints -----------------------------------------------------------------------------
#
# ``webhooks.outbox.emit`` asks for the active endpoints in the transaction of every change it
# reports (every knock). Kept until any endpoint is saved or deleted (signals, and
# ``forget_endpoints`` where a surface writes with ``update``). A read made inside a
# transaction is kept only once that transaction has committed, and only if no endpoint changed
# meanwhile (a generation counter, bumped at the change and again at its commit).

_endpoints: tuple[float, list[Any]] | None = None
_endpoints_gen = 0


def get_endpoints() -> list[Any] | None:
    """The cached active endpoints (a new list), or None (not cached, or caching is off)."""
    if not enabled():
        return None
    with _lock:
        hit = _endpoints
    if hit is None or hit[0] < time.monotonic():
        return None
    return list(hit[1])


def endpoints_generation() -> int:
    return _endpoints_gen


def put_endpoints(endpoints: list[Any], *, generation: int) -> None:
    """Keep ``endpoints``, read at ``generation``, once what was read is committed."""
    if not enabled():
        return

    def keep() -> None:
        global _endpoints
        with _lock:
            if _endpoints_gen == generation:
                _endpoints = (time.monotonic() + TTL, list(endpoints))

    if _in_transaction():
        transaction.on_commit(keep)
    else:
        keep()


def forget_endpoints() -> None:
    def drop() -> None:
        global _endpoints, _endpoints_gen
        with _lock:
            _endpoints = None
            _endpoints_gen += 1

    drop()
    transaction.on_commit(drop)


# Invalidation on every save and delete, whatever the surface -----------------------------------


def _room_changed(sender: Any, instance: Room, **kwargs: Any) -> None:
    forget_room(room_id=instance.pk, name=instance.name)


def _token_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    forget_token(instance.jti)


def _endpoint_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    forget_endpoints()


def connect_signals() -> None:
    """Called by ``LobbyConfig.ready``."""
    from django.core.signals import setting_changed
    from django.db.models.signals import post_delete, post_save

    from .models import MeetingToken, Room, WebhookEndpoint

    post_save.connect(_room_changed, sender=Room, dispatch_uid="anteroom-cache-room-save")
    post_delete.connect(_room_changed, sender=Room, dispatch_uid="anteroom-cache-room-delete")
    post_save.connect(_token_changed, sender=MeetingToken, dispatch_uid="anteroom-cache-tok-save")
    post_delete.connect(
        _token_changed, sender=MeetingToken, dispatch_uid="anteroom-cache-tok-delete"
    )
    post_save.connect(_endpoint_changed, sender=WebhookEndpoint, dispatch_uid="anteroom-cache-wh")
    post_delete.connect(
        _endpoint_changed, sender=WebhookEndpoint, dispatch_uid="anteroom-cache-wh-delete"
    )
    setting_changed.connect(_settings_changed, dispatch_uid="anteroom-cache-settings")
