"""The WebSocket handshake's ``Origin`` check: scheme, host and port compared exactly.

Browsers send cookies on a WebSocket handshake to any page of the same *site*, and another port
or scheme of the same host is the same site: a page on ``http://127.0.0.1:9999`` (or
``https://127.0.0.1``) opening ``ws://127.0.0.1:8000/ws/rooms/x/`` carries the staff session
cookie of ``127.0.0.1:8000``. Channels' ``AllowedHostsOriginValidator`` compares the host only.

The rule (docs/security.md, "WebSocket Origin"):

* The **served origin** of a handshake is the origin it was addressed to, as Django's CSRF check
  computes it: ``https`` when the socket is secure (``wss``, or the proxy's
  ``X-Forwarded-Proto: https`` when ``ANTEROOM_BEHIND_TLS`` sets ``SECURE_PROXY_SSL_HEADER``),
  else ``http``; host and port from the ``Host`` header, which must be in ``ALLOWED_HOSTS``.
* The handshake's ``Origin`` must be one of ``ANTEROOM_ALLOWED_ORIGINS`` when that is set, or
  else exactly the served origin (so ``scripts/serve``, Daphne behind nginx and tests on random
  ports need no setting). Scheme, host and port must all match (default ports made explicit).
  A missing, ``null`` or malformed ``Origin`` is refused. Refused handshakes get HTTP 403.
* **Cookies only from the same origin:** a socket whose ``Origin`` is allowed but is not the
  served origin (a page of another allowed origin) gets no cookies: no staff session, no guest
  cookie; it works with tokens only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http.request import split_domain_port, validate_host

Origin = tuple[str, str, int]  # scheme, host (lower case, IPv6 without brackets), port
DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` as a tuple, or None for anything else (paths, ``null``, …)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.username or parts.password or parts.path or "?" in value or "#" in value:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def explicit_origins() -> list[Origin]:
    """``settings.ANTEROOM_ALLOWED_ORIGINS`` parsed; a malformed entry is a configuration error
    (raised when ``config.asgi`` builds the application, so a server refuses to start)."""
    out = []
    for item in settings.ANTEROOM_ALLOWED_ORIGINS:
        origin = parse_origin(item)
        if origin is None:
            raise ImproperlyConfigured(
                f"ANTEROOM_ALLOWED_ORIGINS: {item!r} is not an origin like https://host[:port]"
            )
        out.append(origin)
    return out


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    found = [v for k, v in scope.get("headers", []) if k.lower() == name]
    if len(found) != 1:
        return None  # absent, or sent twice: never guess which one counts
    try:
        return bytes(found[0]).decode("latin1")
    except (TypeError, ValueError):
        return None


def _secure(scope: dict[str, Any]) -> bool:
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        meta_name, expected = proxy
        name = meta_name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin1")
        value = _header(scope, name)
        return value is not None and value.split(",")[0].strip() == expected
    return False


def served_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin this handshake was addressed to, or None if its Host is not ours."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if _secure(scope) else "http"
    try:
        number = int(port) if port else DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return scheme, domain.strip("[]").lower(), number


def check(scope: dict[str, Any]) -> tuple[bool, bool]:
    """``(allowed, same_origin)`` for a handshake scope."""
    raw = _header(scope, b"origin")
    origin = parse_origin(raw) if raw else None
    if origin is None:
        return False, False
    served = served_origin(scope)
    same = served is not None and origin == served
    explicit = explicit_origins()
    allowed = origin in explicit if explicit else same
    return allowed, same


class ExactOriginValidator:
    """ASGI middleware for the WebSocket router: refuse (403) a handshake whose ``Origin`` is
    not allowed; strip the cookies of one that is allowed but not of the served origin."""

    def __init__(self, application: Any) -> None:
        self.application = application
        explicit_origins()  # refuse to start with a malformed setting

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("ExactOriginValidator guards WebSocket connections only")
        allowed, same = check(scope)
        if not allowed:
            denier: Any = WebsocketDenier()  # 403 before accept, as Channels' validators do
            return await denier(scope, receive, send)
        if not same:
            headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"cookie"]
            scope = {**scope, "headers": headers}
        return await self.application(scope, receive, send)
