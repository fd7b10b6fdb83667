from django.apps import AppConfig


class BreakoutsConfig(AppConfig):
    name = "breakouts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from lobby.consumers import EXTRA_HANDLERS

        from .handlers import HANDLERS

        EXTRA_HANDLERS.update(HANDLERS)
