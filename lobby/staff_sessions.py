"""The staff session behind a moderator socket (docs/security.md, "Staff sockets").

A signed-in staff user's dashboard socket moderates on the strength of a Django session. The
session can end while the socket stays open: the user signs out (here or in another tab), the
password changes (every other session's auth hash stops matching), the session is flushed,
expires or is deleted, the account is deactivated. Three things keep the socket honest:

1. **every privileged action re-checks the session** (``services.require_moderator`` calls
   :func:`session_user`): the session still exists, names this user through a configured
   backend, the user is active, and its stored auth hash matches the user's current one (or one
   made with a ``SECRET_KEY_FALLBACKS`` key) — Django's own ``get_user`` verification, without
   its side effects (no flush, no key cycling of a session that is not this request's);
2. **a doorbell on sign-out and account changes**: ``user_logged_out`` and saves of the user's
   password / ``is_active`` / ``is_staff`` (and its deletion) ring the user's ``staff.<hash>``
   group; each of its sockets re-checks its own session at once and closes if it ended (a
   sign-out names its session, whose sockets close even before Django flushes it);
3. **a periodic re-check** by each staff socket, every ``ANTEROOM_STAFF_SESSION_CHECK`` seconds
   (default 30), for what rings no bell (a flush, expiry, ``clearsessions``, SQL).

A socket whose session ended gets ``STAFF_SESSION_ENDED`` and closes with 4401.
"""

from __future__ import annotations

import hashlib
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
)
from django.contrib.auth.signals import user_logged_out
from django.core.exceptions import ValidationError
from django.db.models.signals import post_delete, post_save
from django.utils.crypto import constant_time_compare

from . import events

# A save of one of these fields can end the user's staff sockets.
WATCHED_FIELDS = frozenset({"password", "is_active", "is_staff"})


def session_digest(session_key: str) -> str:
    """How a session is named in messages (never the key itself: it is a credential)."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def session_user(*, user_id: int, session_key: str) -> Any | None:
    """The active user ``user_id`` if ``session_key`` is a live session of theirs whose auth
    hash matches their current password; else None (read only)."""
    if not session_key:
        return None
    engine = import_module(settings.SESSION_ENGINE)
    data = engine.SessionStore(session_key).load()  # {} when missing or expired
    backend_path = data.get(BACKEND_SESSION_KEY)
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    try:
        session_user_id = get_user_model()._meta.pk.to_python(data.get(SESSION_KEY))
    except ValidationError:
        return None
    if session_user_id != user_id:
        return None
    user = load_backend(backend_path).get_user(user_id)  # None for inactive users
    if user is None or not user.is_active:
        return None
    stored = data.get(HASH_SESSION_KEY)
    if not stored:
        return None
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return user if any(constant_time_compare(stored, h) for h in hashes) else None


def staff_socket_valid(*, user_id: int, session_key: str) -> bool:
    """May a staff socket stay open: its session lives and its user is still staff."""
    user = session_user(user_id=user_id, session_key=session_key)
    return user is not None and bool(getattr(user, "is_staff", False))


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None or getattr(request, "session", None) is None:
        return
    key = request.session.session_key or ""
    events.staff_sessions_changed(user.pk, ended_session=session_digest(key) if key else "")


def _user_saved(sender: Any, instance: Any, created: bool, update_fields: Any, **kw: Any) -> None:
    if created or (update_fields is not None and not WATCHED_FIELDS & set(update_fields)):
        return  # e.g. ``last_login`` on every sign-in
    events.staff_sessions_changed(instance.pk)


def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    events.staff_sessions_changed(instance.pk)


def connect() -> None:
    """Connect the doorbells (from ``LobbyConfig.ready``)."""
    user_model = get_user_model()
    user_logged_out.connect(_logged_out, dispatch_uid="anteroom.staff_sessions.logged_out")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="anteroom.staff_sessions.save")
    post_delete.connect(
        _user_deleted, sender=user_model, dispatch_uid="anteroom.staff_sessions.delete"
    )
