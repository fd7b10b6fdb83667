"""The socket's cookies, session and Django user, read only when a socket asks to act as staff.

Channels' ``AuthMiddlewareStack`` loads the session and the user of *every* socket at the
handshake: one hop to the ORM thread and a session query per connect, although only a staff
dashboard socket (``join`` with ``"staff": true``) ever uses them; a token socket (a guest, a
participant, an API-made moderator) never does. Here ``scope["user"]`` is a lazy object that
loads the user (Channels' own ``get_user``: session, backend, auth-hash check) the first time it is
used — in ``services.join_plan``, which runs on the ORM thread — so a token socket costs no
session read at all.

One middleware (``LazyAuthMiddleware``) does what Channels' ``CookieMiddleware``,
``SessionMiddleware`` and the lazy user did as three: ``scope["cookies"]`` parsed as Django
parses them, ``scope["session"]`` a lazy session of the session cookie, ``scope["user"]``
lazy. It does not wrap ``send``: Channels' session wrapper saves a changed session only on
``http.response.start``, which a WebSocket never sends, so on a socket it only cost every
outgoing frame two attribute reads through a lazy object (and every connect three scope copies
and three awaits).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.http import parse_cookie
from django.utils.functional import SimpleLazyObject


def load_user(scope: dict[str, Any]) -> Any:
    """The user of a socket's session, or ``AnonymousUser`` (sync: call on the ORM thread).
    Channels' own ``get_user`` (session, backend, auth-hash check), run synchronously."""
    from channels.auth import get_user

    return get_user.func(scope)  # type: ignore[attr-defined]  # the wrapped sync function


def _session(cookies: dict[str, str]) -> Any:
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return store(cookies.get(settings.SESSION_COOKIE_NAME))


class LazyAuthMiddleware:
    """``scope["cookies"]``, a lazy ``scope["session"]`` and a lazy ``scope["user"]``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if "headers" not in scope:
            raise ValueError("LazyAuthMiddleware needs a scope with headers (HTTP or WebSocket)")
        cookies: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"cookie":  # the first Cookie header, as Channels' CookieMiddleware
                cookies = parse_cookie(value.decode("latin1"))
                break
        scope = dict(scope, cookies=cookies)
        if "session" not in scope:
            scope["session"] = SimpleLazyObject(lambda: _session(cookies))
        if "user" not in scope:
            scope["user"] = SimpleLazyObject(lambda: load_user(scope))
        return await self.inner(scope, receive, send)


def LazyAuthMiddlewareStack(inner: Any) -> Any:
    return LazyAuthMiddleware(inner)
