"""ASGI entry point: ``daphne config.asgi:application``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Build the Django app (and the app registry) before importing anything that uses models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from lobby import branding, routing  # noqa: E402
from lobby.ops.logs import redact_daphne_access_log  # noqa: E402
from lobby.runtime.auth import LazyAuthMiddlewareStack  # noqa: E402
from lobby.runtime.origin import ExactOriginValidator  # noqa: E402
from lobby.runtime.process import RuntimeApp  # noqa: E402

redact_daphne_access_log()
# A bad ANTEROOM_PRODUCT_NAME / LOGO_URL / ACCENT_COLOR stops the server here, with the system
# check's message (Daphne runs no system checks of its own).
branding.raise_if_misconfigured()

# RuntimeApp starts this process's machinery (lobby/runtime/process.py: the loop binding, the
# layer watcher, the sweeper) once, on the server's loop, before the first scope is served.
application = RuntimeApp(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            # Origin checked exactly (scheme, host, port) at the handshake: lobby/runtime/origin.py.
            # The session's user is read only by a staff join: lobby/runtime/auth.py.
            "websocket": ExactOriginValidator(
                LazyAuthMiddlewareStack(URLRouter(routing.websocket_urlpatterns))  # type: ignore[arg-type]
            ),
        }
    )
)
