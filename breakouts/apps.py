from django.apps import AppConfig


class BreakoutsConfig(AppConfig):
    name = "breakouts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from lobby import commands
        from lobby.consumers import EXTRA_HANDLERS

        from .commands import BREAKOUT_MESSAGES
        from .handlers import HANDLERS

        EXTRA_HANDLERS.update(HANDLERS)
        commands.register(*BREAKOUT_MESSAGES)
