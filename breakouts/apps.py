from django.apps import AppConfig


class BreakoutsConfig(AppConfig):
    name = "breakouts"
    default_auto_field = "django.db.models.BigAutoField"
