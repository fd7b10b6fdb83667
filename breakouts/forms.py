"""The breakout panel's plain-POST form (the dashboard's breakout buttons, without JavaScript)."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

ACTIONS = frozenset(
    {
        "breakout-create",
        "breakout-create-and-invite",
        "breakout-invite",
        "breakout-move",
        "breakout-extend",
        "breakout-broadcast",
        "breakout-clear-all",
        "breakout-destroy-all",
        "breakout-help-answer",
    }
)
MAIN_ROOM = "main"  # ``destination`` of a move back to the parent room
EXTEND_MINUTES = 5  # what the panel's "+5 min" buttons add when no ``minutes`` is sent


class BreakoutActionForm(forms.Form):
    """One breakout button. The services check the ranges against the room; these are the
    shapes."""

    action = forms.ChoiceField(choices=[(a, a) for a in sorted(ACTIONS)])
    max_rooms = forms.IntegerField(required=False, min_value=1, max_value=10)
    participants = forms.IntegerField(required=False, min_value=2, max_value=49)
    # The timer of new rooms (create), or how much to add (extend): 1 minute to 4 hours.
    minutes = forms.IntegerField(required=False, min_value=1, max_value=240)
    force_join = forms.BooleanField(required=False)
    room_id = forms.UUIDField(required=False)
    client = forms.CharField(required=False, max_length=128)
    # Where ``breakout-move`` takes ``client``: a breakout room's id, or "main" (the parent).
    destination = forms.CharField(required=False, max_length=64)
    text = forms.CharField(required=False, max_length=1000, strip=True)

    def clean_destination(self) -> uuid.UUID | str | None:
        raw: str = self.cleaned_data.get("destination") or ""
        if not raw:
            return None
        if raw == MAIN_ROOM:
            return MAIN_ROOM
        try:
            return uuid.UUID(raw)
        except ValueError as exc:
            raise forms.ValidationError(_("Choose a breakout room or the main room.")) from exc

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = data.get("action")
        if action in ("breakout-create", "breakout-create-and-invite") and not (
            data.get("max_rooms") and data.get("participants")
        ):
            raise forms.ValidationError(_("Say how many rooms and how many people per room."))
        if action == "breakout-invite" and not (data.get("room_id") and data.get("client")):
            raise forms.ValidationError(_("Choose a participant and a breakout room."))
        if action == "breakout-move" and not (data.get("client") and data.get("destination")):
            raise forms.ValidationError(_("Choose a participant and where to move them."))
        if action == "breakout-help-answer" and not data.get("client"):
            raise forms.ValidationError(_("Choose whose help request was answered."))
        if action == "breakout-broadcast" and not data.get("text"):
            raise forms.ValidationError(_("Write a message for the breakout rooms."))
        return data
