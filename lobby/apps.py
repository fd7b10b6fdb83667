from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class LobbyConfig(AppConfig):
    name = "lobby"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import branding, cache, staff_sessions  # noqa: F401 - branding registers its check
        from .api import schema  # noqa: F401 - registers the OpenAPI extensions
        from .commands import register
        from .extensions import ws_handlers
        from .media import check_settings
        from .media.handlers import HANDLERS as MEDIA_HANDLERS
        from .media.relay import MEDIA_MESSAGES

        check_settings()  # a bad ANTEROOM_MEDIA / ICE / TURN setting stops the server here
        register(*MEDIA_MESSAGES)
        ws_handlers.update(MEDIA_HANDLERS)

        staff_sessions.connect()
        cache.connect_signals()

        # The sweeper is one of this process's background jobs (lobby/runtime/process.py).
        from django.conf import settings

        from .runtime import sweeper
        from .runtime.process import RUNTIME

        RUNTIME.job("sweeper", sweeper.run, enabled=lambda: settings.ANTEROOM_RUN_SWEEPER)


class AnteroomAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with ``admin.site`` an ``AnteroomAdminSite``: the staff sign-in
    throttled by django-axes, its password check off the shared threads (lobby/staff_login.py)."""

    default = False  # named in INSTALLED_APPS; "lobby" stays LobbyConfig
    default_site = "lobby.staff_login.AnteroomAdminSite"
