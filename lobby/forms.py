"""Forms of the server-rendered pages (the dashboard's plain-POST actions)."""

from __future__ import annotations

from typing import Any

from django import forms

DECIDE_ACTIONS = {"admit": "admitted", "deny": "denied"}
DECIDE_ALL_ACTIONS = {"admit-all": "admitted", "deny-all": "denied"}
# action -> the room_set_state change it makes
ROOM_ACTIONS: dict[str, dict[str, bool]] = {
    "pause": {"paused": True},
    "resume": {"paused": False},
    "mute-audio": {"audio_muted": True},
    "unmute-audio": {"audio_muted": False},
    "mute-video": {"video_muted": True},
    "unmute-video": {"video_muted": False},
}
ACTIONS = [*DECIDE_ACTIONS, *DECIDE_ALL_ACTIONS, *ROOM_ACTIONS]


class DashboardActionForm(forms.Form):
    """One dashboard button: ``action`` names it; admit/deny also carry ``request_id``."""

    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS])
    request_id = forms.UUIDField(required=False)
    reason = forms.CharField(required=False, max_length=100, strip=True)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") in DECIDE_ACTIONS and not data.get("request_id"):
            raise forms.ValidationError("Which request? The form is missing its request id.")
        return data
