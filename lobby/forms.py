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
BREAKOUT_ACTIONS = (
    "breakout-create",
    "breakout-create-and-invite",
    "breakout-invite",
    "breakout-clear-all",
    "breakout-destroy-all",
)
ACTIONS = [*DECIDE_ACTIONS, *DECIDE_ALL_ACTIONS, *ROOM_ACTIONS, *BREAKOUT_ACTIONS]


class DashboardActionForm(forms.Form):
    """One dashboard button: ``action`` names it; admit/deny also carry ``request_id``."""

    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS])
    request_id = forms.UUIDField(required=False)
    reason = forms.CharField(required=False, max_length=100, strip=True)
    # Breakout rooms (the services check the ranges against the room; these are the shapes).
    max_rooms = forms.IntegerField(required=False, min_value=1, max_value=10)
    participants = forms.IntegerField(required=False, min_value=2, max_value=49)
    minutes = forms.IntegerField(required=False, min_value=1, max_value=240)
    force_join = forms.BooleanField(required=False)
    room_id = forms.UUIDField(required=False)
    client = forms.CharField(required=False, max_length=128)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = data.get("action")
        if action in DECIDE_ACTIONS and not data.get("request_id"):
            raise forms.ValidationError("Which request? The form is missing its request id.")
        if action in ("breakout-create", "breakout-create-and-invite") and not (
            data.get("max_rooms") and data.get("participants")
        ):
            raise forms.ValidationError("Say how many rooms and how many people per room.")
        if action == "breakout-invite" and not (data.get("room_id") and data.get("client")):
            raise forms.ValidationError("Choose a participant and a breakout room.")
        return data
