from django.apps import AppConfig


class BreakoutsConfig(AppConfig):
    """Breakout rooms plug into the room core through its extension points
    (lobby/extensions.py); the core never imports this app."""

    name = "breakouts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from lobby import commands, extensions

        from .commands import BREAKOUT_MESSAGES
        from .handlers import HANDLERS
        from .selectors import breakouts_snapshot, help_frames, invitation_frames
        from .services import breakout_memberships_close, breakouts_sweep, help_requests_sweep
        from .views import PANEL

        extensions.ws_handlers.update(HANDLERS)
        commands.register(*BREAKOUT_MESSAGES)
        extensions.on_left.append(breakout_memberships_close)
        extensions.sweepers["breakouts"] = breakouts_sweep
        extensions.sweepers["help_requests"] = help_requests_sweep
        extensions.join_frames.append(invitation_frames)
        extensions.join_frames.append(help_frames)
        extensions.snapshot_fields["breakouts"] = breakouts_snapshot
        extensions.dashboard_panels.append(PANEL)
