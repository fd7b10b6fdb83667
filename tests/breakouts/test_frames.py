"""Every breakout frame constructor (breakouts/events.py) builds the frame docs/breakouts.md
documents: every documented key, of the documented JSON type, and no undocumented key. The
examples are read from the document itself, with the same reader as tests/lobby/test_frames.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from breakouts import events
from breakouts.models import HelpRequest
from lobby.models import Participant, Room
from tests.lobby.test_frames import _mismatches, _objects, _parse

DOC = Path(__file__).resolve().parents[2] / "docs" / "breakouts.md"

T = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ROOM_ID = uuid.uuid4()
PARENT = Room(id=uuid.uuid4(), name="class", privacy="private", mode="group", created_at=T)
P0 = Participant(room=PARENT, participant_id="p0", name="Ann", role="participant", status="paused")
ROOM = {"id": str(ROOM_ID), "name": "Room 1", "members": []}
HELP = HelpRequest(
    id=uuid.uuid4(),
    parent=PARENT,
    breakout_id=ROOM_ID,
    participant_id="p0",
    requested_at=T,
    expires_at=T,
    status="answered",
    resolved_by="mod",
)

SAMPLES: dict[str, list[dict[str, Any]]] = {
    "breakout-created": [dict(events.breakout_created([ROOM]))],
    "breakouts-updated": [
        dict(events.breakouts_updated([ROOM])),
        dict(events.breakouts_updated([])),
    ],
    "breakout-invitation": [dict(events.breakout_invitation(ROOM, "mod"))],
    "breakout-invited": [dict(events.breakout_invited(ROOM_ID, ["p0", "p1"], "mod"))],
    "breakout-invite-rejected": [dict(events.breakout_invite_rejected(ROOM_ID, "p1"))],
    "breakout-joined": [dict(events.breakout_joined(ROOM))],
    "breakout-left": [
        dict(events.breakout_left(ROOM_ID, reason))
        for reason in ("left", "cleared", "destroyed", "moved", "timer")
    ],
    "breakout-participant-joined": [dict(events.breakout_participant("joined", P0))],
    "breakout-participant-left": [dict(events.breakout_participant("left", P0))],
    "breakout-ending": [dict(events.breakout_ending(ROOM_ID, T))],
    "breakout-extended": [dict(events.breakout_extended(ROOM_ID, T))],
    "breakout-message": [dict(events.breakout_message("Five minutes left", "mod"))],
    "breakout-help-requested": [dict(events.breakout_help_requested(HELP, P0))],
    "breakout-help-resolved": [dict(events.breakout_help_resolved(HELP))],
}


def documented() -> dict[str, list[dict[str, Any]]]:
    """Server frames with an example in docs/breakouts.md, by type (``→`` lines are client
    messages; a prose sketch with ``…`` between keys is not a frame shape)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for prefix, text in _objects(DOC.read_text()):
        if "→" in prefix:
            continue
        try:
            frame = _parse(text)
        except ValueError:
            continue
        if frame.get("type") in events.CONSTRUCTORS:
            found.setdefault(frame["type"], []).append(frame)
    return found


def test_every_breakout_frame_has_a_constructor_a_sample_and_an_example() -> None:
    assert set(SAMPLES) == set(events.CONSTRUCTORS)
    assert set(documented()) == set(events.CONSTRUCTORS), "a frame type lacks an example"
    for kind, samples in SAMPLES.items():
        assert all(s["type"] == kind for s in samples)
        assert callable(getattr(events, events.CONSTRUCTORS[kind]))


@pytest.mark.parametrize("kind", sorted(events.CONSTRUCTORS))
def test_each_built_breakout_frame_has_exactly_a_documented_shape(kind: str) -> None:
    examples = documented()[kind]
    for built in SAMPLES[kind]:
        problems = []
        for doc in examples:
            extra = sorted(set(built) - set(doc))
            found = _mismatches(doc, built) + [f".{k}: not documented" for k in extra]
            if not found:
                break
            problems.append(found)
        else:
            pytest.fail(f"{kind}: {built} matches no documented example: {problems}")


def test_the_check_catches_an_undocumented_or_retyped_breakout_key() -> None:
    doc = documented()["breakout-left"][0]
    assert _mismatches(doc, {"type": "breakout-left", "room_id": "x", "reason": 5}) == [
        ".reason: int, documented str"
    ]
    assert _mismatches(doc, {"type": "breakout-left", "reason": "left"}) == [".room_id: missing"]
