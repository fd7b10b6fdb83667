"""Forms of the server-rendered pages (the dashboard's plain-POST actions)."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from . import extensions
from .commands import MAX_DISPLAY_NAME, RoomMute, RoomPause, RoomResume, RoomUnmute

DECIDE_ACTIONS = {"admit": "admitted", "deny": "denied"}
DECIDE_ALL_ACTIONS = {"admit-all": "admitted", "deny-all": "denied"}
# action -> the room_set_state change it makes (the socket's room-* messages make the same)
ROOM_ACTIONS: dict[str, dict[str, bool]] = {
    "pause": RoomPause().changes(),
    "resume": RoomResume().changes(),
    "mute-audio": RoomMute(audio=True).changes(),
    "unmute-audio": RoomUnmute(audio=True).changes(),
    "mute-video": RoomMute(video=True).changes(),
    "unmute-video": RoomUnmute(video=True).changes(),
}
# Moderator actions on one participant (``client``: their participant id).
PEOPLE_ACTIONS = ("participant-remove", "participant-to-lobby")
# Messages to the waiting room: to everyone waiting (set / clear), to one waiting guest.
MESSAGE_ACTIONS = ("lobby-message", "lobby-message-clear", "entry-message")
# The room core's own buttons; apps add theirs (lobby/extensions.py: dashboard_panels).
CORE_ACTIONS = [
    *DECIDE_ACTIONS,
    *DECIDE_ALL_ACTIONS,
    *ROOM_ACTIONS,
    *PEOPLE_ACTIONS,
    *MESSAGE_ACTIONS,
]


def dashboard_actions() -> list[str]:
    """Every ``action`` a dashboard POST may name: the core's and the registered panels'."""
    return [*CORE_ACTIONS, *extensions.panel_actions()]


class DashboardActionForm(forms.Form):
    """One dashboard button: ``action`` names it; admit/deny also carry ``request_id``. A panel's
    action (breakouts') is validated by the panel's own form."""

    action = forms.ChoiceField(choices=[])
    request_id = forms.UUIDField(required=False)
    reason = forms.CharField(required=False, max_length=MAX_DISPLAY_NAME, strip=True)
    client = forms.CharField(required=False, max_length=128)
    # Deny all asks first: the POST that denies carries ``confirm`` (the confirmation's button).
    confirm = forms.BooleanField(required=False)
    # A message's text (its length is the service's rule; panels use ``text`` too) and the
    # minutes the room message adds to every waiting guest's deadline.
    text = forms.CharField(required=False, strip=True)
    extend_minutes = forms.IntegerField(required=False, min_value=0, max_value=60)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        action = cast(forms.ChoiceField, self.fields["action"])
        action.choices = [(a, a) for a in dashboard_actions()]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = data.get("action")
        if action in DECIDE_ACTIONS and not data.get("request_id"):
            raise forms.ValidationError(_("Which request? The form is missing its request id."))
        if action == "entry-message" and not (data.get("request_id") and data.get("text")):
            raise forms.ValidationError(_("Write a message for the guest."))
        if action in PEOPLE_ACTIONS and not data.get("client"):
            raise forms.ValidationError(_("Who? The form is missing the participant."))
        return data
