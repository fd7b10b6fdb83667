"""The socket's Django user, read only when a socket asks to act as staff.

Channels' ``AuthMiddlewareStack`` loads the session and the user of *every* socket at the
handshake: one hop to the ORM thread and a session query per connect, although only a staff
dashboard socket (``join`` with ``"staff": true``) ever uses them; a token socket (a guest, a
participant, an API-made moderator) never does. Here ``scope["user"]`` is a lazy object that
loads the user (Channels' own ``get_user``: session, backend, auth-hash check) the first time it is
used — in ``services.join_plan``, which runs on the ORM thread — so a token socket costs no
session read at all. ``scope["session"]`` stays Channels' lazy session.
"""

from __future__ import annotations

from typing import Any

from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.utils.functional import SimpleLazyObject


def load_user(scope: dict[str, Any]) -> Any:
    """The user of a socket's session, or ``AnonymousUser`` (sync: call on the ORM thread).
    Channels' own ``get_user`` (session, backend, auth-hash check), run synchronously."""
    from channels.auth import get_user

    return get_user.func(scope)  # type: ignore[attr-defined]  # the wrapped sync function


class LazyAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if "session" not in scope:
            raise ValueError("LazyAuthMiddleware needs SessionMiddleware above it")
        scope = dict(scope)
        scope.setdefault("user", SimpleLazyObject(lambda: load_user(scope)))
        return await super().__call__(scope, receive, send)


def LazyAuthMiddlewareStack(inner: Any) -> Any:
    return CookieMiddleware(SessionMiddleware(LazyAuthMiddleware(inner)))
