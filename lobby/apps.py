from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class LobbyConfig(AppConfig):
    name = "lobby"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import staff_sessions
        from .api import schema  # noqa: F401 - registers the OpenAPI extensions

        staff_sessions.connect()


class AnteroomAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with ``admin.site`` an ``AnteroomAdminSite``: the staff sign-in
    throttled by django-axes, its password check off the shared threads (lobby/staff_login.py)."""

    default = False  # named in INSTALLED_APPS; "lobby" stays LobbyConfig
    default_site = "lobby.staff_login.AnteroomAdminSite"
